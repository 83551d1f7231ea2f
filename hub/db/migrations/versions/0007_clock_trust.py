"""Clock trust: held broadcasts, rating clock facts (issue 14 item 5).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:30:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # RESERVED: filled in by the change this revision is named for


def downgrade() -> None:
    pass  # RESERVED
