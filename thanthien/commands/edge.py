"""`thanthien edge run --config FILE`: the edge agent in the foreground (systemd runs it);
`thanthien edge enroll --hub URL --code CODE`: a Pi fetches its identity and config.

The config is validated at start-up (every problem listed, exit 2). SIGTERM and SIGINT
stop the agent cleanly: devices closed, retained ``offline`` published, disconnect.
Under systemd (``Type=notify``) it reports READY and feeds the watchdog while healthy. The
hub's ``restart`` command stops the agent the same way and runs the command again in the same
process (``exec``), so it restarts with or without systemd.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from thanthien.commands.config import load_or_exit
from thanthien.logs import setup_logging
from thanthien.sdnotify import Watchdog, notify

log = logging.getLogger(__name__)

EXIT_START_FAILED = 1
EXIT_SWITCHED = 75
"""The updater pointed ``current`` at another release: systemd (``Restart=always``) starts it."""


def run(args: argparse.Namespace) -> int:
    from thanthien.edge.agent import EdgeAgent
    from thanthien.edge.settings import EdgeSettings

    path = Path(args.config)
    settings = load_or_exit("edge", path)
    assert isinstance(settings, EdgeSettings)
    setup_logging(args.log_level or settings.logging.level)
    try:
        agent = EdgeAgent(settings, config_path=path)
        agent.start()
    except Exception as exc:
        log.error("edge agent could not start: %s", exc)
        return EXIT_START_FAILED

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        agent.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    watchdog = Watchdog(agent.healthy)
    notify("READY=1")
    watchdog.start()
    try:
        while not agent.wait_until_stop_requested(1.0):
            pass
    finally:
        notify("STOPPING=1")
        watchdog.close()
        agent.stop()
    if agent.update_restart:
        log.warning("the update switched releases: exiting so that systemd starts the one in force")
        return EXIT_SWITCHED
    if agent.restart_requested:
        log.warning("restarting the edge agent")
        os.execv(sys.executable, [sys.executable, "-m", "thanthien.cli", *sys.argv[1:]])
    return 0


EXIT_REFUSED = 3
UNIT = "thanthien-edge.service"


def _default_config(data: Path) -> Path:
    return Path("/etc/thanthien/edge.toml") if os.geteuid() == 0 else data / "edge.toml"


def run_enroll(args: argparse.Namespace) -> int:
    from thanthien.edge.enroll import EnrollError, enroll

    if args.log_level:
        setup_logging(args.log_level)
    data = Path(args.data)
    config = Path(args.config) if args.config else _default_config(data)
    try:
        result = enroll(args.hub, args.code, data_dir=data, config_path=config, hardware=args.hardware,
                        owner=args.owner, releases_root=Path(args.releases) if args.releases else None)
    except EnrollError as exc:
        print(f"enrollment refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"node {result.node_id} enrolled ({result.identity} identity, hub config version "
          f"{result.config_version}); config written to {result.config_path}")
    if args.start:
        systemctl = shutil.which("systemctl")
        if systemctl is None:
            print("systemctl not found: start the agent with", result.run_command, file=sys.stderr)
            return 1
        done = subprocess.run([systemctl, "restart", UNIT], check=False)
        print(f"{UNIT} restarted" if done.returncode == 0 else f"systemctl restart {UNIT} failed")
        return done.returncode
    print(f"start it with: {result.run_command}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edge", help="the edge agent of one node")
    esub = p.add_subparsers(dest="edge_command", required=True, metavar="ACTION")
    r = esub.add_parser("run", help="run the edge agent in the foreground")
    r.add_argument("--config", required=True, help="edge config file (TOML)")
    r.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="default: [logging] level of the config")
    r.set_defaults(func=run)
    e = esub.add_parser("enroll", help="fetch the node's identity and config with a one-time code")
    e.add_argument("--hub", required=True, help="the hub's address, e.g. http://hub.local:8080")
    e.add_argument("--code", required=True, help="the enrollment code IT gave (XXXX-XXXX-XXXX-XXXX)")
    e.add_argument("--data", default="/var/lib/thanthien-edge", help="the node's data directory")
    e.add_argument("--config", help="the config file to write (default /etc/thanthien/edge.toml as root, "
                                    "else DATA/edge.toml)")
    e.add_argument("--hardware", choices=["gpio", "mock"], default="gpio")
    e.add_argument("--owner", help="user that gets the files (the service's, e.g. thanthien)")
    e.add_argument("--releases", help="the update root (releases/<version>/, the current link), e.g. "
                                      "/opt/thanthien: the node then takes remote updates")
    e.add_argument("--start", action="store_true", help=f"restart {UNIT} afterwards")
    e.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log to stderr at this level (default: only warnings, through Python's default)")
    e.set_defaults(func=run_enroll)
