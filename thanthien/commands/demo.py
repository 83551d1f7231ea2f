"""`thanthien demo`: the whole system on one machine, in the foreground (make demo).

Started so far: the private broker and the hub (API, ingest, scheduler). The simulated town
joins as it is built.
Ctrl-C stops every process it started; a second run reuses var/demo.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from thanthien.broker import Broker
from thanthien.commands.broker import ensure_hub_user
from thanthien.logs import setup_logging

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    setup_logging("INFO")
    root = Path(args.data)
    broker = Broker(root / "broker", port=args.broker_port)
    ensure_hub_user(broker, broker.data_dir / "hub.secret")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with broker:
        log.info("demo broker on mqtt://127.0.0.1:%d (hub password in %s)",
                 broker.port, broker.data_dir / "hub.secret")
        from thanthien.hub.demo import start_demo_hub

        hub, api_url, admin, admin_password = start_demo_hub(
            root / "hub", broker_port=broker.port, http_port=args.hub_port,
            hub_password=(broker.data_dir / "hub.secret").read_text().strip())
        print(f"Hub API: {api_url}/docs  login: {admin} / {admin_password}", flush=True)
        log.info("Ctrl-C stops the demo")
        try:
            while not stop.wait(1.0):
                if not broker.running:
                    log.error("broker exited; see %s", broker.log_path)
                    return 1
        finally:
            hub.stop()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run broker, hub and a simulated town (make demo)")
    p.add_argument("--data", default="var/demo", help="demo state, reused by the next run")
    p.add_argument("--broker-port", type=int, default=18830)
    p.add_argument("--hub-port", type=int, default=8080, help="the hub's HTTP API")
    p.set_defaults(func=run)
