"""A throwaway PostgreSQL database for a benchmark run (127.0.0.1:5432, user postgres)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

log = logging.getLogger(__name__)

ADMIN_URL = os.environ.get("THANTHIEN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def throwaway_database(prefix: str) -> Iterator[str | None]:
    """Yields a SQLAlchemy URL of a fresh database, or None when no server answers."""
    try:
        import psycopg
    except ImportError:
        yield None
        return
    name = f"{prefix}_{os.getpid()}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        log.warning("PostgreSQL not reachable (%s): skipping its variant", exc)
        yield None
        return
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version() -> str | None:
    try:
        import psycopg
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except Exception:
        return None
