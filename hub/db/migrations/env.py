"""Alembic environment: the engine comes from the caller (thanthien.hub.db.migrate)."""

from alembic import context

from thanthien.hub.db.models import Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
