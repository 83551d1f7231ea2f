"""`thanthien hub serve | migrate | create-user`: the central hub."""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from pathlib import Path

from thanthien.commands.config import load_or_exit
from thanthien.logs import setup_logging

log = logging.getLogger(__name__)


def _settings(path: str):  # type: ignore[no-untyped-def]
    from thanthien.hub.settings import HubSettings

    settings = load_or_exit("hub", Path(path))
    assert isinstance(settings, HubSettings)
    return settings


def run_serve(args: argparse.Namespace) -> int:
    from thanthien.hub.runtime import HubRuntime, parse_roles

    settings = _settings(args.config)
    setup_logging(settings.logging.level)
    try:
        roles = parse_roles(args.roles)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtime = HubRuntime(settings, roles)
    try:
        runtime.start()
        if "api" in roles and not runtime.wait_http(15):
            log.error("the HTTP API did not start on %s:%d", settings.http.host, settings.http.port)
            return 1
        if "api" in roles:
            log.info("API on http://%s:%d/api/v1/docs", settings.http.host, settings.http.port)
        while not stop.wait(1.0):
            if runtime.api_failed:
                log.error("the HTTP server stopped")
                return 1
    finally:
        runtime.stop()
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    from thanthien.hub.db.migrate import current_revision
    from thanthien.hub.db.session import Database

    settings = _settings(args.config)
    setup_logging(settings.logging.level)
    db = Database(settings.database_url)
    try:
        db.migrate()
        print(f"database at revision {current_revision(db.engine)}")
    finally:
        db.dispose()
    return 0


def run_create_user(args: argparse.Namespace) -> int:
    from thanthien.hub.db.session import Database
    from thanthien.hub.services import users
    from thanthien.hub.services.errors import ServiceError
    from thanthien.protocol.payloads import utc_now

    settings = _settings(args.config)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Mật khẩu cho {args.username}: ")
        if getpass.getpass("Nhập lại mật khẩu: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return 2
    db = Database(settings.database_url)
    try:
        db.migrate()
        with db.session() as session:
            users.create_user(session, username=args.username, password=password, role=args.role,
                              full_name=args.full_name, now=utc_now())
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(f"user {args.username!r} created with role {args.role}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hub", help="the central hub: API, MQTT ingest, scheduler")
    hsub = p.add_subparsers(dest="hub_command", required=True, metavar="ACTION")
    serve = hsub.add_parser("serve", help="run the hub in the foreground")
    serve.add_argument("--config", required=True)
    serve.add_argument("--roles", default="api,ingest,scheduler",
                       help="comma-separated subset of api,ingest,scheduler (default: all)")
    serve.set_defaults(func=run_serve)
    migrate = hsub.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--config", required=True)
    migrate.set_defaults(func=run_migrate)
    cu = hsub.add_parser("create-user", help="create a user (e.g. the first admin)")
    cu.add_argument("--config", required=True)
    cu.add_argument("--username", required=True)
    cu.add_argument("--role", choices=["admin", "officer", "it", "leader"], default="admin")
    cu.add_argument("--full-name", default="")
    cu.add_argument("--password-stdin", action="store_true", help="read the password from one stdin line")
    cu.set_defaults(func=run_create_user)
