"""The Alembic migrations build exactly the schema the models describe, on both back ends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from thanthien.hub.db.migrate import current_revision, head_revision
from thanthien.hub.db.models import Base


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
