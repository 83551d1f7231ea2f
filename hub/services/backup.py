"""Backup and restore of the hub: every table and the media library in one tar.gz.

Tables are written as JSON lines through SQLAlchemy, not as a database-specific dump, so a
backup restores on SQLite or PostgreSQL alike (a site moving from the embedded default to
PostgreSQL restores its SQLite backup there). The archive records the schema revision; a
restore needs an empty database migrated to the same revision and refuses anything else.

Archive layout: ``manifest.json``, ``tables/<table>.jsonl``, ``media/<sha[:2]>/<sha>.wav``.

A backup of one commune (``--commune``) holds only its rows (``db/ownership.py``) and its media
files, and restores into an empty database as a hub of its own.

The rating counts (``rating_counts``, ``rating_month_counts``) are derived from the ratings and
are not in the archive: a restore counts them again from the restored ratings, in the same
transaction, so they equal the ratings whatever the archive holds, cut in the restoring hub's
zone (``tz``) or else the zone the backed-up hub recorded (``rating_count_zone`` is in the
archive). It costs one GROUP BY over the ratings, little beside loading them from JSON.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import tarfile
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.engine import Connection

from thanthien import __version__
from thanthien.hub.db import ownership
from thanthien.hub.db.migrate import current_revision
from thanthien.hub.db.models import Base, Commune, RatingCount, RatingMonthCount
from thanthien.hub.db.session import Database
from thanthien.hub.services import rating_counts
from thanthien.hub.tenancy import HOME

log = logging.getLogger(__name__)

FORMAT = 1
BATCH = 2000


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    revision: str | None
    rows: dict[str, int]
    media_files: int


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):  # a local day (roster patterns, rating counts)
        return {"$d": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "$dt":
            return datetime.fromisoformat(inner)
        if key == "$d":
            return date.fromisoformat(inner)
        if key == "$b64":
            return base64.b64decode(inner)
        if key == "$uuid":
            return uuid.UUID(inner)
    return value


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


DERIVED = (RatingCount.__table__.name, RatingMonthCount.__table__.name)
"""Tables rebuilt from the others on restore, never archived."""


def _tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in DERIVED]  # parents before children


def create_backup(db: Database, *, data_dir: Path, out: Path, commune: str | None = None) -> BackupSummary:
    """Write every table and the media library to ``out`` (a .tar.gz) from one consistent
    read transaction. ``commune``: only that commune's rows and media files (``db/ownership.py``),
    which restore into an empty database as a hub of their own."""
    media_dir = data_dir / "media"
    rows: dict[str, int] = {}
    commune_id = _commune_id(db, commune) if commune else None
    media: set[str] = set()  # a commune's backup: the sha256 of its media items
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    reader = db.engine.execution_options(sqlite_begin="DEFERRED")  # no write lock on SQLite
    with reader.connect() as conn, tarfile.open(tmp, "w:gz") as tar:
        # One snapshot for every table: SQLite's WAL keeps a reader's view for the whole
        # transaction; PostgreSQL needs REPEATABLE READ for that.
        if not db.is_sqlite:
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        revision = current_revision_on(conn)
        for table in _tables():
            buf = io.BytesIO()
            count = 0
            query = select(table)
            if commune_id is not None:
                clause = ownership.commune_clause(table.name, commune_id)
                if clause is None:
                    rows[table.name] = 0
                    _add_bytes(tar, f"tables/{table.name}.jsonl", b"")
                    continue
                query = query.where(clause)
            for row in conn.execute(query).mappings():
                if table.name == "media_items" and commune_id is not None:
                    media.add(row["sha256"])
                line = {k: _encode(v) for k, v in row.items()}
                buf.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
                count += 1
            rows[table.name] = count
            _add_bytes(tar, f"tables/{table.name}.jsonl", buf.getvalue())
        conn.rollback()
        media_files = 0
        if media_dir.is_dir():
            for path in sorted(media_dir.rglob("*")):
                if commune_id is not None and path.stem not in media:
                    continue  # a commune's backup: the files of its media items only
                if path.is_file() and not path.name.startswith("."):
                    tar.add(path, arcname=f"media/{path.relative_to(media_dir).as_posix()}")
                    media_files += 1
        manifest = {"format": FORMAT, "revision": revision, "created_at": datetime.now(UTC).isoformat(),
                    "hub_version": __version__, "dialect": db.engine.dialect.name, "rows": rows,
                    "media_files": media_files, "rebuilt_on_restore": list(DERIVED), "commune": commune}
        _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
    tmp.replace(out)
    log.info("backup written to %s: %d rows, %d media files", out, sum(rows.values()), media_files)
    return BackupSummary(out, revision, rows, media_files)


def _commune_id(db: Database, code: str) -> int:
    with db.engine.connect() as conn:
        found = conn.scalar(select(Commune.id).where(Commune.code == code))
    if found is None:
        raise BackupError(f"no commune {code!r} in this hub")
    return int(found)


def current_revision_on(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _open_archive(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"cannot read {archive}: {exc}") from None


def _read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = tar.getmember("manifest.json")
    except KeyError:
        raise BackupError("not a hub backup: manifest.json is missing") from None
    extracted = tar.extractfile(member)
    if extracted is None:
        raise BackupError("not a hub backup: manifest.json is not a file")
    manifest = json.loads(extracted.read())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unsupported backup format {manifest.get('format')!r}")
    return manifest


def _only_a_first_commune(conn: Connection) -> bool:
    return [tuple(r) for r in conn.execute(select(Commune.code))] == [(HOME,)]


def restore_backup(db: Database, *, data_dir: Path, archive: Path, tz: str | None = None) -> BackupSummary:
    """Load a backup into an empty database (migrated here to head first) and the media
    directory, and count the ratings again (cut in ``tz``, else in the backup's zone). Refuses a
    database that already holds data or sits at another revision."""
    with _open_archive(archive) as tar:
        manifest = _read_manifest(tar)
        db.migrate()
        revision = current_revision(db.engine)
        if manifest["revision"] != revision:
            raise BackupError(f"backup is at schema revision {manifest['revision']}, this hub at "
                              f"{revision}: restore with the hub version that made it, then upgrade")
        tables = {t.name: t for t in _tables()}
        with db.engine.begin() as conn:
            busy = [t.name for t in Base.metadata.sorted_tables  # derived ones too
                    if conn.scalar(select(func.count()).select_from(t))]
            if busy == ["communes"] and _only_a_first_commune(conn):
                # a hub started on the new database made its one commune (registry.ensure_commune);
                # the backup brings its own
                conn.execute(Commune.__table__.delete())
                busy = []
            if busy:
                raise BackupError("the database is not empty (tables with rows: "
                                  f"{', '.join(sorted(busy))}): restore into a new database")
            rows: dict[str, int] = {}
            for table in _tables():
                member = tar.extractfile(f"tables/{table.name}.jsonl")
                if member is None:
                    raise BackupError(f"backup lacks table {table.name}")
                batch: list[dict[str, Any]] = []
                count = 0
                for line in member:
                    batch.append({k: _decode(v) for k, v in json.loads(line).items()})
                    if len(batch) >= BATCH:
                        conn.execute(insert(table), batch)
                        count += len(batch)
                        batch.clear()
                if batch:
                    conn.execute(insert(table), batch)
                    count += len(batch)
                rows[table.name] = count
            counted = rating_counts.rebuild(conn, zone=tz)
            if not db.is_sqlite:
                _reset_sequences(conn, list(tables.values()))
        media_files = _restore_media(tar, data_dir / "media")
    log.info("restored %s: %d rows, %d media files; %d rating count rows rebuilt", archive,
             sum(rows.values()), media_files, counted)
    return BackupSummary(archive, revision, rows, media_files)


def _restore_media(tar: tarfile.TarFile, media_dir: Path) -> int:
    count = 0
    root = media_dir.resolve()
    for member in tar.getmembers():
        if not member.name.startswith("media/") or not member.isfile():
            continue
        target = (media_dir / member.name.removeprefix("media/")).resolve()
        if not target.is_relative_to(root):  # a crafted archive may not write elsewhere
            raise BackupError(f"refusing path outside the media directory: {member.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None
        target.write_bytes(source.read())
        count += 1
    return count


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL identity sequences continue after the restored ids."""
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or pk[0].autoincrement not in (True, "auto") or pk[0].type.python_type is not int:
            continue
        column = pk[0].name
        seq = conn.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column})
        if seq:
            conn.execute(text(f"SELECT setval(:s, COALESCE((SELECT MAX({column}) FROM {table.name}), 0) + 1, "
                              "false)"), {"s": seq})
