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
