"""Node enrollment codes, credentials and remote configuration (issue 15 items 3-5).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 11:10:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # RESERVED: filled in by the change this revision is named for


def downgrade() -> None:
    pass  # RESERVED
