"""Proof of play, relays and live announcements (issue 19 items 1, 2 and 4).

``broadcast_deliveries`` gets ``proof`` (ok / silent / unheard), its ``proof_detail``, the
``levels`` a node sent and heard, and the ``sources`` that really went out; ``broadcasts``
gets ``stream_url``, ``stream_fallback`` and ``slot_s`` (a relay of a station's stream) and
``live_s`` (a live announcement from a browser, a play-now of ``schedule_kind`` ``now``: how long
it lasted; ``NULL`` for every other broadcast).

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-01 13:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcast_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proof", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("proof_detail", sa.String(length=300), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("levels", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("sources", sa.JSON(), nullable=True))
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stream_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("stream_fallback", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("slot_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("live_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("live_s")
        batch_op.drop_column("slot_s")
        batch_op.drop_column("stream_fallback")
        batch_op.drop_column("stream_url")
    with op.batch_alter_table("broadcast_deliveries", schema=None) as batch_op:
        batch_op.drop_column("sources")
        batch_op.drop_column("levels")
        batch_op.drop_column("proof_detail")
        batch_op.drop_column("proof")
