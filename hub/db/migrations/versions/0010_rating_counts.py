"""Daily rating counts kept at ingest (issue 16 item 2).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 11:10:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # RESERVED: filled in by the change this revision is named for


def downgrade() -> None:
    pass  # RESERVED
