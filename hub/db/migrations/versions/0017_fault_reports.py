"""Residents' fault reports from the QR code on a loudspeaker pole (issue 20 item 3):
``fault_reports``, one ticket each, answered in public under its code.

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-01 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'fault_reports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('node_id', sa.String(length=63), nullable=False),
        sa.Column('device_code', sa.String(length=63), nullable=False),
        sa.Column('zone_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('message', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('answer', sa.String(length=1000), nullable=False),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('answered_by', sa.String(length=64), nullable=False),
        sa.Column('sender_sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_fault_reports_node_id_nodes'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['zone_id'], ['zones.id'], name=op.f('fk_fault_reports_zone_id_zones'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fault_reports')),
        sa.UniqueConstraint('code', name='uq_fault_reports_code'),
    )
    op.create_index('ix_fault_reports_status', 'fault_reports', ['status', 'due_at'])
    op.create_index('ix_fault_reports_sender', 'fault_reports', ['sender_sha256', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_fault_reports_sender', table_name='fault_reports')
    op.drop_index('ix_fault_reports_status', table_name='fault_reports')
    op.drop_table('fault_reports')
