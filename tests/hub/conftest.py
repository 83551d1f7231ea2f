"""Hub fixtures: a migrated database on SQLite and on PostgreSQL, a hand-moved clock, contexts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.hub_helpers import Clock, hub_settings
from support import private_name
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Base
from thanthien.hub.db.session import Database

PG_ADMIN_URL = os.environ.get("THANTHIEN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session (skips when no server)."""
    import psycopg

    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({str(exc).strip()[:120]}); "
                    "set THANTHIEN_TEST_PG to run the PostgreSQL variants")
    name = private_name("thanthien_hub_test")  # one per worker: xdist runs several sessions
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="session")
def _migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Database]]:
    cache: dict[str, Database] = {}
    yield cache
    for db in cache.values():
        db.dispose()


_USED_SEQUENCES = text("""
    SELECT DISTINCT t.relname FROM pg_sequences q
    JOIN pg_class s ON s.relname = q.sequencename AND s.relkind = 'S'
    JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')
    JOIN pg_class t ON t.oid = d.refobjid
    WHERE q.schemaname = current_schema() AND q.last_value IS NOT NULL""")


def _clean(db: Database) -> None:
    """Empty every table and restart its ids. On PostgreSQL only the tables a test touched
    (rows in them, or their id sequence used) are truncated: truncating all seventy-odd tables
    took about 0.25 s per test, a minute and a half of the suite on four workers."""
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name != "communes"]
    with db.engine.begin() as conn:
        if db.is_sqlite:
            for table in tables:
                conn.execute(table.delete())
        else:
            probe = " UNION ALL ".join(f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM {t.name})"
                                       for t in tables)
            touched = set(conn.execute(text(probe)).scalars()) | set(conn.execute(_USED_SEQUENCES).scalars())
            names = ", ".join(t.name for t in tables if t.name in touched)
            if names:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        _keep_only_home(conn, postgres=not db.is_sqlite)


def _keep_only_home(conn, *, postgres: bool) -> None:
    """Back to the one commune a hub installed for one town has after its first start (``home``,
    ``registry.ensure_commune``)."""
    conn.execute(text("DELETE FROM communes"))
    conn.execute(text("INSERT INTO communes (id, code, name) VALUES (1, 'home', 'Xã')"))
    if postgres:
        conn.execute(text("SELECT setval(pg_get_serial_sequence('communes', 'id'), 1)"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.getbasetemp() / 'hub-sqlite.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(db_url: str, _migrated: dict[str, Database]) -> Database:
    """A migrated, empty database (migrated once per session and back end, emptied per test)."""
    database = _migrated.get(db_url)
    if database is None:
        database = Database(db_url)
        database.migrate()
        _migrated[db_url] = database
    _clean(database)
    database.unfollow()  # no follow-up of an earlier test's hub on this shared database
    return database


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(db: Database, clock: Clock, tmp_path: Path) -> HubContext:
    return HubContext(settings=hub_settings(tmp_path), db=db, clock=clock)
