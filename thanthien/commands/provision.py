"""`thanthien provision node NODE_ID`: broker credentials and an edge config for a node."""

from __future__ import annotations

import argparse
from pathlib import Path

from thanthien.broker import BrokerError
from thanthien.provision import provision_node


def run_node(args: argparse.Namespace) -> int:
    out = Path(args.out or f"config/nodes/{args.node_id}.toml")
    try:
        provision_node(
            args.node_id, broker_data=Path(args.broker_data), out=out, host=args.host,
            port=args.port, site=args.site, hardware=args.hardware,
        )
    except (ValueError, BrokerError) as exc:
        print(f"error: {exc}")
        return 2
    print(f"node {args.node_id}: broker user created, config written to {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("provision", help="create identities for nodes")
    psub = p.add_subparsers(dest="provision_command", required=True, metavar="WHAT")
    node = psub.add_parser("node", help="broker user + edge config for one node")
    node.add_argument("node_id")
    node.add_argument("--broker-data", default="var/broker", help="the broker's data directory")
    node.add_argument("--out", help="config file to write (default config/nodes/NODE_ID.toml)")
    node.add_argument("--host", default="127.0.0.1", help="broker host the node connects to")
    node.add_argument("--port", type=int, default=1883)
    node.add_argument("--site", default="")
    node.add_argument("--hardware", choices=["gpio", "mock"], default="gpio")
    node.set_defaults(func=run_node)
