"""Registry pages and the weekly duty roster (issue 15 items 1-2).

Zones, counters, officers and devices are retired (``retired_at``) instead of deleted, so
their history and reports stay; a camera device keeps its RTSP and snapshot URLs and its
account (never shown back). The roster becomes a weekly pattern per counter
(``roster_patterns``) and its exceptions (``roster_exceptions``: leave, swap, a one-off day);
the one-off shifts of the old ``roster`` table move into the exceptions as ``extra`` rows with
their ids, and the table goes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 11:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

RETIRED = ("zones", "counters", "officers", "devices")
CAMERA = (("rtsp_url", 500), ("snapshot_url", 500), ("camera_username", 128), ("camera_password", 256))


def upgrade() -> None:
    for table in RETIRED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("devices", schema=None) as batch_op:
        for name, length in CAMERA:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))

    op.create_table('roster_patterns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('counter_id', sa.Integer(), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('weekdays', sa.JSON(), nullable=False),
    sa.Column('starts_min', sa.Integer(), nullable=False),
    sa.Column('ends_min', sa.Integer(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['counter_id'], ['counters.id'],
                            name=op.f('fk_roster_patterns_counter_id_counters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['officer_id'], ['officers.id'],
                            name=op.f('fk_roster_patterns_officer_id_officers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_patterns'))
    )
    with op.batch_alter_table('roster_patterns', schema=None) as batch_op:
        batch_op.create_index('ix_roster_patterns_counter_from', ['counter_id', 'valid_from'], unique=False)

    op.create_table('roster_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('counter_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['counter_id'], ['counters.id'],
                            name=op.f('fk_roster_exceptions_counter_id_counters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['officer_id'], ['officers.id'],
                            name=op.f('fk_roster_exceptions_officer_id_officers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_exceptions'))
    )
    with op.batch_alter_table('roster_exceptions', schema=None) as batch_op:
        batch_op.create_index('ix_roster_exceptions_counter_time', ['counter_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_roster_exceptions_officer_time', ['officer_id', 'starts_at'], unique=False)

    # the one-off shifts, with their ids (the API named them by id), as one-off days
    op.execute(sa.text(
        "INSERT INTO roster_exceptions (id, kind, officer_id, counter_id, starts_at, ends_at, note) "
        "SELECT id, 'extra', officer_id, counter_id, starts_at, ends_at, '' FROM roster"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("SELECT setval(pg_get_serial_sequence('roster_exceptions', 'id'), "
                           "COALESCE((SELECT MAX(id) FROM roster_exceptions), 0) + 1, false)"))
    with op.batch_alter_table('roster', schema=None) as batch_op:
        batch_op.drop_index('ix_roster_counter_time')
    op.drop_table('roster')


def downgrade() -> None:
    op.create_table('roster',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('counter_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['counter_id'], ['counters.id'], name=op.f('fk_roster_counter_id_counters'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['officer_id'], ['officers.id'], name=op.f('fk_roster_officer_id_officers'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster'))
    )
    with op.batch_alter_table('roster', schema=None) as batch_op:
        batch_op.create_index('ix_roster_counter_time', ['counter_id', 'starts_at'], unique=False)
    # one-off days go back; the weekly pattern, leave and swaps have no place there
    op.execute(sa.text(
        "INSERT INTO roster (id, officer_id, counter_id, starts_at, ends_at) "
        "SELECT id, officer_id, counter_id, starts_at, ends_at FROM roster_exceptions "
        "WHERE kind = 'extra' AND counter_id IS NOT NULL"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("SELECT setval(pg_get_serial_sequence('roster', 'id'), "
                           "COALESCE((SELECT MAX(id) FROM roster), 0) + 1, false)"))

    with op.batch_alter_table('roster_exceptions', schema=None) as batch_op:
        batch_op.drop_index('ix_roster_exceptions_officer_time')
        batch_op.drop_index('ix_roster_exceptions_counter_time')
    op.drop_table('roster_exceptions')
    with op.batch_alter_table('roster_patterns', schema=None) as batch_op:
        batch_op.drop_index('ix_roster_patterns_counter_from')
    op.drop_table('roster_patterns')

    with op.batch_alter_table("devices", schema=None) as batch_op:
        for name, _length in reversed(CAMERA):
            batch_op.drop_column(name)
    for table in reversed(RETIRED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("retired_at")
