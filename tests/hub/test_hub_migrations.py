"""The Alembic migrations build exactly the schema the models describe, on both back ends."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hub.e2e import write_toml
from support import private_name
from thanthien.hub.db.migrate import current_revision, head_revision
from thanthien.hub.db.models import Base
from thanthien.hub.db.session import Database


def test_migrated_database_is_at_the_head_revision(db):
    assert current_revision(db.engine) == head_revision(db.engine) is not None


def test_migrations_match_the_models(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_migrating_twice_changes_nothing(db):
    before = current_revision(db.engine)
    db.migrate()
    assert current_revision(db.engine) == before


def test_sqlite_database_runs_in_wal_mode(db):
    if not db.is_sqlite:
        pytest.skip("journal mode is a SQLite setting")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def _fresh_url(db, tmp_path, request) -> str:
    if db.is_sqlite:
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    import psycopg

    from hub.conftest import PG_ADMIN_URL

    name = private_name("thanthien_fresh")
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def test_processes_migrating_at_the_same_time_all_succeed(db, tmp_path, request):
    url = _fresh_url(db, tmp_path, request)
    config = write_toml(tmp_path / "hub.toml", {"hub": {"data_dir": str(tmp_path)}, "database": {"url": url}})
    command = [sys.executable, "-m", "thanthien.cli", "hub", "migrate", "--config", str(config)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    fresh = Database(url)
    try:
        assert current_revision(fresh.engine) == head_revision(fresh.engine)
    finally:
        fresh.dispose()


def _filler(column, chosen: dict[tuple[str, str], object]):
    """A value of the column's type, or the value already chosen for the column it references."""
    for fk in column.foreign_keys:
        return chosen[(fk.column.table.name, fk.column.name)]
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = str
    import datetime as dt
    import uuid

    values = {int: 1, float: 1.0, bool: False, dt.datetime: dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
              dt.date: dt.date(2025, 1, 1), dict: {}, list: [], uuid.UUID: uuid.uuid4(), bytes: b"x"}
    if kind is str:
        length = getattr(column.type, "length", None) or 8
        return "x" * min(length, 8)
    return values.get(kind, "x")


def test_upgrade_keeps_the_rows_of_a_database_in_use(tmp_path):
    """Every table at 0012 (the oldest database a town may still run) holds a row that others
    reference; the batch rebuilds of later revisions must keep them all (a rebuild of
    media_items once failed on a database with broadcasts)."""
    from sqlalchemy import MetaData, func, select

    from thanthien.hub.db.migrate import upgrade

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(db.engine, "0012")
        old = MetaData()
        old.reflect(db.engine)
        chosen: dict[tuple[str, str], object] = {}
        with db.engine.begin() as conn:
            for table in old.sorted_tables:
                if table.name == "alembic_version":
                    continue
                row = {c.name: _filler(c, chosen) for c in table.columns}
                conn.execute(table.insert().values(row))
                chosen.update({(table.name, name): value for name, value in row.items()})
        upgrade(db.engine)
        assert current_revision(db.engine) == head_revision(db.engine)
        with db.engine.connect() as conn:
            now = Base.metadata.tables
            counts = {t.name: conn.execute(select(func.count()).select_from(now[t.name])).scalar()
                      for t in old.sorted_tables if t.name in now}
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").first() is None
    finally:
        db.dispose()
    assert set(counts.values()) == {1}, {name: n for name, n in counts.items() if n != 1}
