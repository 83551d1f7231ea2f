"""Broadcast rules: quiet-hours exceptions, four eyes (issue 14 items 1-3).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:30:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # RESERVED: filled in by the change this revision is named for


def downgrade() -> None:
    pass  # RESERVED
