"""Registry pages and the weekly duty roster (issue 15 items 1-2).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 11:10:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # RESERVED: filled in by the change this revision is named for


def downgrade() -> None:
    pass  # RESERVED
