"""`thanthien hub serve | migrate | create-user | backup | restore | rebuild-counts`: the central hub."""

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
from thanthien.sdnotify import Watchdog, notify

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
    # systemd (Type=notify, WatchdogSec): fed only while the HTTP server and ingest live.
    watchdog = Watchdog(lambda: not runtime.api_failed and runtime.healthy())
    try:
        runtime.start()
        if "api" in roles and not runtime.wait_http(15):
            log.error("the HTTP API did not start on %s:%d", settings.http.host, settings.http.port)
            return 1
        if "api" in roles:
            log.info("API on http://%s:%d/api/v1/docs", settings.http.host, settings.http.port)
        notify("READY=1")
        watchdog.start()
        while not stop.wait(1.0):
            if runtime.api_failed:
                log.error("the HTTP server stopped")
                return 1
    finally:
        notify("STOPPING=1")
        watchdog.close()
        runtime.stop()
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    """The schema at head and what the config declares (its communes, or the hub's first one),
    as a start does: a new database is ready for the command line before the hub first runs."""
    from thanthien.hub.db.migrate import current_revision
    from thanthien.hub.db.session import Database
    from thanthien.hub.services import registry

    settings = _settings(args.config)
    setup_logging(settings.logging.level)
    db = Database(settings.database_url)
    try:
        db.migrate()
        with db.session() as session:
            registry.apply_declarations(session, registry=settings.registry, site_name=settings.hub.site_name)
        print(f"database at revision {current_revision(db.engine)}")
    finally:
        db.dispose()
    return 0


def run_create_user(args: argparse.Namespace) -> int:
    from thanthien.hub.db.session import Database
    from thanthien.hub.roles import SYSTEM
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
            users.create_user(session, actor=SYSTEM, username=args.username, password=password,
                              role=args.role, full_name=args.full_name, now=utc_now())
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
    backup = hsub.add_parser("backup", help="write the database and media to a .tar.gz")
    backup.add_argument("--config", required=True)
    backup.add_argument("--out", help="archive path (default: DATA_DIR/backups/hub-<time>.tar.gz)")
    backup.add_argument("--commune", help="only this commune's rows and media (its code), which restore as "
                                          "a hub of its own")
    backup.set_defaults(func=run_backup)
    restore = hsub.add_parser("restore", help="load a backup into an empty database")
    restore.add_argument("--config", required=True)
    restore.add_argument("archive")
    restore.set_defaults(func=run_restore)
    recount = hsub.add_parser("rebuild-counts", help="count the stored ratings again for the reports, "
                                                     "in hub.timezone (after changing it)")
    recount.add_argument("--config", required=True)
    recount.set_defaults(func=run_rebuild_counts)


def run_backup(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from thanthien.hub.db.session import Database
    from thanthien.hub.services.backup import BackupError, create_backup

    settings = _settings(args.config)
    setup_logging(settings.logging.level)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{args.commune}-{stamp}" if args.commune else f"hub-{stamp}"
    out = Path(args.out) if args.out else settings.hub.data_dir / "backups" / f"{name}.tar.gz"
    db = Database(settings.database_url)
    try:
        summary = create_backup(db, data_dir=settings.hub.data_dir, out=out, commune=args.commune)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(f"backup {summary.path}: schema {summary.revision}, {sum(summary.rows.values())} rows, "
          f"{summary.media_files} media files")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from thanthien.hub.db.session import Database
    from thanthien.hub.services.backup import BackupError, restore_backup

    settings = _settings(args.config)
    setup_logging(settings.logging.level)
    db = Database(settings.database_url)
    try:
        summary = restore_backup(db, data_dir=settings.hub.data_dir, archive=Path(args.archive),
                                 tz=settings.hub.timezone)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(f"restored {summary.path}: {sum(summary.rows.values())} rows, {summary.media_files} media files")
    return 0


def run_rebuild_counts(args: argparse.Namespace) -> int:
    from thanthien.hub.db.models import RatingMonthCount
    from thanthien.hub.db.session import Database
    from thanthien.hub.services import rating_counts

    settings = _settings(args.config)
    setup_logging(settings.logging.level)
    db = Database(settings.database_url)
    try:
        db.migrate()
        # a database migrated by the first 0010 (before rating_month_counts joined it) gets the table
        RatingMonthCount.__table__.create(db.engine, checkfirst=True)
        with db.session() as session:
            rows = rating_counts.rebuild(session, zone=settings.hub.timezone)
    finally:
        db.dispose()
    print(f"rating counts rebuilt: {rows} rows (counter, officer, local day in {settings.hub.timezone})")
    return 0
