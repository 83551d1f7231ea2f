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

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration rebuilds a table (copy, DROP, rename); with foreign keys enforced the
        # DROP of a table other rows reference fails. Off outside the transaction (SQLite ignores
        # the pragma inside one), checked before the commit, on again after.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        with connection.begin():
            if not sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            context.run_migrations()
            if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                raise RuntimeError("the migration left rows whose foreign keys point nowhere")
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
