"""Claims devices make, checked against the registry (issue 14 item 4).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:30:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # RESERVED: filled in by the change this revision is named for


def downgrade() -> None:
    pass  # RESERVED
