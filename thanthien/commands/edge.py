"""`thanthien edge run --config FILE`: the edge agent in the foreground (systemd runs it).

The config is validated at start-up (every problem listed, exit 2). SIGTERM and SIGINT
stop the agent cleanly: devices closed, retained ``offline`` published, disconnect.
Under systemd (``Type=notify``) it reports READY and feeds the watchdog while healthy.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from thanthien.commands.config import load_or_exit
from thanthien.logs import setup_logging
from thanthien.sdnotify import Watchdog, notify

log = logging.getLogger(__name__)

EXIT_START_FAILED = 1


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
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edge", help="the edge agent of one node")
    esub = p.add_subparsers(dest="edge_command", required=True, metavar="ACTION")
    r = esub.add_parser("run", help="run the edge agent in the foreground")
    r.add_argument("--config", required=True, help="edge config file (TOML)")
    r.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="default: [logging] level of the config")
    r.set_defaults(func=run)
