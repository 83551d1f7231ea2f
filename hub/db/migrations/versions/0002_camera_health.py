"""Camera health: current state per camera and the history of its states.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "camera_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=63), nullable=False),
        sa.Column("camera", sa.String(length=63), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("connect_ms", sa.Float(), nullable=True),
        sa.Column("brightness", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_status")),
        sa.UniqueConstraint("node_id", "camera", name="uq_camera_status_node_camera"),
    )
    op.create_table(
        "camera_periods",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=63), nullable=False),
        sa.Column("camera", sa.String(length=63), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_periods")),
    )
    with op.batch_alter_table("camera_periods", schema=None) as batch_op:
        batch_op.create_index("ix_camera_periods_camera_started", ["node_id", "camera", "started_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("camera_periods", schema=None) as batch_op:
        batch_op.drop_index("ix_camera_periods_camera_started")
    op.drop_table("camera_periods")
    op.drop_table("camera_status")
