"""Clock trust: held broadcasts, rating clock facts (issue 14 item 5).

Telemetry keeps whether the node trusts its clock, its offset from the hub's time beacon and
how many scheduled broadcasts it holds; a rating keeps whether its press time is uncertain
(the node could not correct it). All nullable: rows of older nodes say nothing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_trusted", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("hub_offset_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("held_broadcasts", sa.Integer(), nullable=True))
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_uncertain", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_column("clock_uncertain")
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.drop_column("held_broadcasts")
        batch_op.drop_column("hub_offset_ms")
        batch_op.drop_column("clock_trusted")
