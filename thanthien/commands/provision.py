"""`thanthien provision node NODE_ID`: broker credentials and an edge config for a node."""

from __future__ import annotations

import argparse
from pathlib import Path

from thanthien.broker import BrokerError
from thanthien.pki import create_ca, issue_server
from thanthien.provision import provision_node


def run_node(args: argparse.Namespace) -> int:
    out = Path(args.out or f"config/nodes/{args.node_id}.toml")
    try:
        provision_node(
            args.node_id, broker_data=Path(args.broker_data), out=out, host=args.host,
            port=args.port, site=args.site, hardware=args.hardware,
            tls_dir=Path(args.tls_dir) if args.tls_dir else None,
        )
    except (ValueError, BrokerError, FileNotFoundError) as exc:
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
    node.add_argument("--tls-dir", help="issue a client certificate from the CA in this folder "
                      "instead of a password")
    node.set_defaults(func=run_node)

    ca = psub.add_parser("ca", help="create the deployment's certificate authority")
    ca.add_argument("--dir", default="var/pki")
    ca.set_defaults(func=run_ca)
    server = psub.add_parser("server", help="issue the broker's TLS certificate")
    server.add_argument("--dir", default="var/pki")
    server.add_argument("--host", action="append", required=True,
                        help="name or address the nodes use to reach the broker (repeatable)")
    server.set_defaults(func=run_server)


def run_ca(args: argparse.Namespace) -> int:
    files = create_ca(Path(args.dir))
    print(f"CA certificate: {files.cert} (key {files.key}, keep it offline)")
    return 0


def run_server(args: argparse.Namespace) -> int:
    try:
        files = issue_server(Path(args.dir), args.host)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 2
    print(f"broker certificate: {files.cert} for {', '.join(args.host)}")
    return 0
