"""Alembic environment: the engine comes from the caller (thanthien.hub.db.migrate).

Hub processes started together (api, ingest, scheduler roles) may all migrate at start-up:
on PostgreSQL a transaction-scoped advisory lock serialises them; on SQLite the migration
transaction begins IMMEDIATE (see db/session.py), which does the same.
"""

from alembic import context
from sqlalchemy import text

from thanthien.hub.db.models import Base

MIGRATION_LOCK = 0x7468616E  # "than"

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
