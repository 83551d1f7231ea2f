"""Camera states when the office node is away (issue 14 items 6-7).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:30:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # RESERVED: filled in by the change this revision is named for


def downgrade() -> None:
    pass  # RESERVED
