"""A PostgreSQL database of its own for a test (advisory locks are per database, so tests of
several hub processes never meet another test's locks); skips when no server answers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from support import private_name

PG_ADMIN_URL = os.environ.get("THANTHIEN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def private_database(prefix: str) -> Iterator[str]:
    """A fresh, empty database (a SQLAlchemy URL), dropped afterwards with its sessions."""
    import psycopg

    admin_url = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({str(exc).strip()[:120]})")
    name = private_name(prefix)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """:func:`private_database` with the hub's schema at head."""
    from thanthien.hub.db.session import Database

    with private_database(prefix) as url:
        db = Database(url)
        db.migrate()
        db.dispose()
        yield url
