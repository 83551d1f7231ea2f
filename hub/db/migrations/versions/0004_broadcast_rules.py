"""Broadcast rules: quiet-hours exceptions, four eyes (issue 14 items 1-3).

A broadcast keeps the quiet-hours exception a leader granted it: who, when and why (four eyes
needs no column: the authors are ``created_by`` and the editors in ``broadcast_audit``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table, PostgreSQL alters it in place
    with op.batch_alter_table('broadcasts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quiet_exception_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('quiet_exception_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('quiet_exception_reason', sa.String(length=500), nullable=True))


def downgrade() -> None:
    # never a table copy on SQLite (3.35+ drops a column in place): copying ``broadcasts`` drops
    # the table, and with foreign keys on that deletes every occurrence and delivery (CASCADE)
    with op.batch_alter_table('broadcasts', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('quiet_exception_reason')
        batch_op.drop_column('quiet_exception_at')
        batch_op.drop_column('quiet_exception_by')
