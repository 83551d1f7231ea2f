"""Login throttling and the administrative audit log (issue 14 item 8).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:30:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # RESERVED: filled in by the change this revision is named for


def downgrade() -> None:
    pass  # RESERVED
