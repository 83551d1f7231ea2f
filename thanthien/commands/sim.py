"""`thanthien sim fleet | compare`: a simulated fleet against a broker and hub, and the
check that the hub stored exactly what the nodes produced."""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path

from thanthien.logs import setup_logging

log = logging.getLogger(__name__)


def _positive(kind: type, minimum: float = 0):  # type: ignore[no-untyped-def]
    def check(text: str):  # type: ignore[no-untyped-def]
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return check


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_fleet(args: argparse.Namespace) -> int:
    from thanthien.broker import BrokerError, reload_running, set_passwords
    from thanthien.sim.control import ControlReader
    from thanthien.sim.fleet import Fleet, FleetOptions, broker_users, default_workers, make_specs, parse_mix
    from thanthien.sim.group import CitizenHabits

    setup_logging(args.log_level)
    try:
        mix = parse_mix(args.mix)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ledger = Path(args.ledger) if args.ledger else None
    if ledger is not None:
        try:
            ledger.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"error: ledger {ledger}: {exc}", file=sys.stderr)
            return 2
        if not os.access(ledger.parent, os.W_OK) or (ledger.exists() and not os.access(ledger, os.W_OK)):
            print(f"error: ledger {ledger}: not writable", file=sys.stderr)
            return 2
    _raise_fd_limit()
    specs = make_specs(args.nodes, mix, seed=args.seed, prefix=args.prefix, clock_skew_s=args.clock_skew)
    if args.broker_data:
        data = Path(args.broker_data)
        try:
            set_passwords(data / "passwd", broker_users(specs))
        except (BrokerError, OSError) as exc:
            print(f"error: broker users: {exc}", file=sys.stderr)
            return 2
        if not reload_running(data):
            log.warning("no running broker found in %s; its users are written for its next start", data)
    if ledger is not None and ledger.exists() and not args.append_ledger:
        ledger.unlink()
    options = FleetOptions(
        broker_host=args.broker_host, broker_port=args.broker_port, data_root=Path(args.data), ledger=ledger,
        workers=args.workers or default_workers(args.nodes),
        habits=CitizenHabits(press_rate=args.press_rate, office_hours=args.office_hours),
        faultable=args.faultable, seed=args.seed,
        start_rate=args.start_rate, log_level=args.worker_log_level,
        env={"telemetry_s": args.telemetry_s, "keepalive_s": args.keepalive, "hub_url": args.hub_url,
             "camera_interval_s": args.camera_interval_s})
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    fleet = Fleet(specs, options)
    started = time.monotonic()
    fleet.start()
    reader = ControlReader(lambda c: fleet.apply(c.name, c.args), stop.set, stop,
                           fifo=Path(args.control) if args.control else None,
                           stdin=sys.stdin if args.stdin_control else None)
    try:
        reader.start()
        connected_in = None
        deadline = None if args.until_stopped else started + args.duration
        last_report = 0.0
        while not stop.wait(0.5):
            now = time.monotonic()
            if not fleet.alive():
                log.error("a fleet worker died")
                return 1
            if connected_in is None or now - last_report >= args.report_s:
                status = fleet.apply("status", [])
                if connected_in is None and status["connected"] >= len(specs):
                    connected_in = now - started
                    print(json.dumps({"event": "all-connected", "nodes": len(specs),
                                      "seconds": round(connected_in, 2), "workers": fleet.pids}), flush=True)
                if now - last_report >= args.report_s:
                    last_report = now
                    log.info("fleet: %d/%d connected, %d presses", status["connected"], status["nodes"],
                             status["presses"])
            if deadline is not None and now >= deadline:
                break
        _drain(fleet, args.drain_s)
        status = fleet.apply("status", [])
        print(json.dumps({"event": "stopping", **status}), flush=True)
    finally:
        stop.set()
        fleet.stop()
        reader.join()
    return 0


def _drain(fleet, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Citizens stop; wait (up to ``seconds``) until the hub acked every stored rating, so the
    ledger and the hub can be compared right after the run."""
    if seconds <= 0:
        return
    fleet.apply("pause", [])
    tick = threading.Event()
    waited = 0.0
    while waited < seconds:
        depth = fleet.apply("status", [])["outbox"]
        if depth == 0:
            return
        tick.wait(0.5)
        waited += 0.5
    log.warning("%d event(s) still unacked after %.0f s; they stay in the node outboxes", depth, seconds)


def run_registry(args: argparse.Namespace) -> int:
    from thanthien.sim.demo import to_toml
    from thanthien.sim.fleet import make_specs, parse_mix, registry_declarations

    try:
        mix = parse_mix(args.mix)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    specs = make_specs(args.nodes, mix, seed=args.seed, prefix=args.prefix)
    print(f"# The fleet of `thanthien sim fleet --nodes {args.nodes} --mix {args.mix} --seed {args.seed} "
          f"--prefix {args.prefix}`; append to the hub config.")
    print(to_toml({"registry": registry_declarations(specs)}))
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from thanthien.sim.ledger import compare, hub_ratings, read_ledger

    url = args.database
    if url is None:
        from thanthien.commands.hub import _settings

        url = _settings(args.hub_config).database_url
    entries = read_ledger(Path(args.ledger))
    result = compare(entries, hub_ratings(url, {node for node, _ in entries}))
    examples = [list(k) for k in (result.missing + result.extra + result.different)[:10]]
    print(json.dumps({"same": result.same, "matched": result.matched, "missing": len(result.missing),
                      "extra": len(result.extra), "different": len(result.different), "examples": examples}))
    return 0 if result.same else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="simulated nodes: a fleet for load and fault drills")
    ssub = p.add_subparsers(dest="sim_command", required=True, metavar="ACTION")
    f = ssub.add_parser("fleet", help="run N simulated nodes (the real edge agent on mock hardware)",
                        description="Control commands (stdin with --stdin-control, or the --control FIFO): "
                                    "status [NODE..] | cut NODE [blackhole|reset] | restore NODE | "
                                    "kill NODE | revive NODE | camera NODE CAMERA MODE | "
                                    "press NODE BOX SCORE | "
                                    "stop")
    f.add_argument("--broker-host", default="127.0.0.1")
    f.add_argument("--broker-port", type=int, default=1883)
    f.add_argument("--broker-data", help="the broker's data directory: node users are written to its "
                   "password file and a running broker reloads them")
    f.add_argument("--nodes", type=_positive(int, 1), default=10)
    f.add_argument("--mix", default="rating=0.6,speaker=0.35,office=0.05",
                   help="node kinds and their weights: rating, speaker, office (2 boxes + a camera)")
    f.add_argument("--press-rate", type=_positive(float), default=1.0,
                   help="citizens per rating box per minute (0: none)")
    f.add_argument("--office-hours", action="store_true",
                   help="citizens come only in office hours on working days (default: round the clock)")
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--prefix", default="sim", help="node ids are PREFIX-0001 ...")
    f.add_argument("--ledger", help="JSON line per rating a node durably stored")
    f.add_argument("--append-ledger", action="store_true", help="keep an existing ledger file")
    f.add_argument("--data", default="var/fleet", help="node data directories (outboxes)")
    f.add_argument("--workers", type=_positive(int, 1), help="worker processes (at least 1 per 100 nodes)")
    f.add_argument("--faultable", type=_positive(int), default=20,
                   help="the first N nodes run behind a fault proxy (cut, kill)")
    f.add_argument("--telemetry-s", type=_positive(float, 1), default=30.0)
    f.add_argument("--keepalive", type=_positive(int, 5), default=30)
    f.add_argument("--camera-interval-s", type=_positive(float, 0.05), default=60.0)
    f.add_argument("--clock-skew", type=_positive(float), default=0.0,
                   help="node clocks are off by up to ± this many seconds")
    f.add_argument("--hub-url", default="http://127.0.0.1:8080/api/v1/", help="where speakers fetch media")
    f.add_argument("--start-rate", type=_positive(float), default=0.0,
                   help="nodes started per second per worker (0: at once)")
    group = f.add_mutually_exclusive_group()
    group.add_argument("--duration", type=_positive(float), default=60.0, help="seconds to run (default 60)")
    group.add_argument("--until-stopped", action="store_true", help="run until Ctrl-C, SIGTERM or `stop`")
    f.add_argument("--drain-s", type=_positive(float), default=30.0,
                   help="at the end, citizens stop and the fleet waits this long for the hub's acks")
    f.add_argument("--control", help="a FIFO (created) that takes control commands")
    f.add_argument("--stdin-control", action="store_true", help="read control commands from stdin")
    f.add_argument("--report-s", type=_positive(float, 1), default=10.0)
    f.add_argument("--log-level", default="INFO")
    f.add_argument("--worker-log-level", default="WARNING")
    f.set_defaults(func=run_fleet)

    r = ssub.add_parser("registry", help="the hub [registry] TOML declaring a fleet's nodes (same arguments)")
    r.add_argument("--nodes", type=_positive(int, 1), default=10)
    r.add_argument("--mix", default="rating=0.6,speaker=0.35,office=0.05")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--prefix", default="sim")
    r.set_defaults(func=run_registry)

    c = ssub.add_parser("compare", help="the ledger against the hub's stored ratings (exit 1 if they differ)")
    c.add_argument("--ledger", required=True)
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--database", help="the hub's SQLAlchemy URL")
    src.add_argument("--hub-config", help="the hub's config file")
    c.set_defaults(func=run_compare)
