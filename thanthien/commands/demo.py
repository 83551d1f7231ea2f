"""`thanthien demo`: the whole system on one machine, in the foreground (make demo).

A private broker, the hub (``thanthien hub serve``, a child process) and the simulated town
of Mường Ảng (its one-stop office: five counters with rating boxes and four cameras on one
node; twelve loudspeaker nodes in its hamlets and residential groups), with the history
seeded on the first run. Prints the dashboard URL and a login per role; reads control
commands (``help``) on stdin; Ctrl-C stops every process it started. A second run reuses
the data directory and starts in seconds.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from thanthien.logs import setup_logging

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    from thanthien.broker import BrokerError
    from thanthien.protocol.payloads import utc_now
    from thanthien.sim import town
    from thanthien.sim.control import ControlReader
    from thanthien.sim.demo import (
        PROVINCE_ADMIN,
        DemoSecrets,
        Enroller,
        HubProcess,
        hub_config,
        next_broadcast,
        prepare_broker,
        seed,
    )
    from thanthien.sim.group import CitizenHabits, NodeGroup
    from thanthien.sim.ledger import Ledger
    from thanthien.sim.node import SimEnv

    setup_logging(args.log_level)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    root = Path(args.data).resolve()
    root.mkdir(parents=True, exist_ok=True)
    secrets_ = DemoSecrets.load_or_create(root / "secrets.json")
    broker, hub_password = prepare_broker(root, args.broker_port)
    hub = HubProcess(hub_config(root, broker_port=broker.port, hub_password=hub_password,
                                http_port=args.hub_port, token_key=secrets_.token_key), root / "hub.log")
    group: NodeGroup | None = None
    ledger: Ledger | None = None
    reader: ControlReader | None = None
    enroller: Enroller | None = None
    base = f"http://127.0.0.1:{args.hub_port}"
    try:
        try:
            broker.start()
        except BrokerError as exc:
            log.error("%s", exc)
            return 1
        seed(root, hub.config, secrets_, history_days=args.history_days, now=utc_now())
        if stop.is_set():
            return 0
        hub.start()
        if not hub.wait_http(f"{base}/healthz", stop, timeout=90):
            if stop.is_set():
                return 0
            log.error("the hub did not answer on %s; its log (%s):\n%s", base, hub.log_path, hub.log_tail())
            return 1
        ledger = Ledger(root / "town" / "ledger.jsonl")
        # every node enrolls with a one-time code, as a Pi does; the province's admin issues them,
        # since the nodes are of two communes
        issuer = next(x for x in secrets_.logins if x.username == PROVINCE_ADMIN)
        enroller = Enroller(base, issuer)
        env = SimEnv("127.0.0.1", broker.port, root / "town", ledger=ledger, hub_url=f"{base}/api/v1/",
                     telemetry_s=30.0, camera_interval_s=10.0, camera_publish_s=60.0, wav_thank_you=True,
                     enroll=enroller)
        specs = town.node_specs(secrets_.nodes)
        habits = CitizenHabits(press_rate=args.press_rate, office_hours=args.office_hours)
        group = NodeGroup(specs, env, habits=habits, faultable={s.node_id for s in specs}, seed=args.seed)
        group.start()
        officer = next(x for x in secrets_.logins if x.role == "officer")
        _banner(base, secrets_, broker.port, root, next_broadcast(base, officer, stop))
        reader = ControlReader(lambda c: group.apply(c.name, c.args), stop.set, stop,
                               stdin=sys.stdin if not args.no_stdin else None).start()
        while not stop.wait(1.0):
            if not broker.running:
                log.error("the broker exited; see %s", broker.log_path)
                return 1
            if not hub.running:
                log.error("the hub exited; its log (%s):\n%s", hub.log_path, hub.log_tail())
                return 1
        return 0
    finally:
        stop.set()
        log.info("stopping the demo")
        if group is not None:
            group.stop()
        if ledger is not None:
            ledger.close()
        if enroller is not None:
            enroller.close()
        hub.stop()
        broker.stop()
        if reader is not None:
            reader.join()
        log.info("demo stopped")


def _banner(base: str, secrets_, broker_port: int, root: Path,  # type: ignore[no-untyped-def]
            upcoming: str | None) -> None:
    from thanthien.sim import town

    lines = [
        "",
        f"Thân Thiện demo: {town.SITE_NAME} ({len(town.node_ids())} nodes)",
        f"Dashboard: {base}/ui/",
        f"API: {base}/api/v1/docs",
        f"Broker: mqtt://127.0.0.1:{broker_port}   data: {root}",
        f"Next broadcast: {upcoming or '(none scheduled)'}",
        "Logins:",
        *[f"  {x.role:<8} {x.username} / {x.password}   ({x.full_name})" for x in secrets_.logins],
        "Type `help` for fault commands (cut, kill, camera ... black); Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run broker, hub and a simulated town (make demo)")
    p.add_argument("--data", default="var/demo", help="demo state, reused by the next run")
    p.add_argument("--broker-port", type=int, default=18830)
    p.add_argument("--hub-port", type=int, default=8080, help="the hub's HTTP API and dashboard")
    p.add_argument("--press-rate", type=float, default=1.0, help="citizens per counter per minute")
    p.add_argument("--office-hours", action="store_true",
                   help="citizens come only in office hours on working days (default: round the clock)")
    p.add_argument("--history-days", type=float,
                   help="seed only this many days of history (default: from the last October survey round)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-stdin", action="store_true", help="do not read control commands from stdin")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=run)
