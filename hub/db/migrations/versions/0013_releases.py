"""Remote updates (issue 18): ``releases`` (signed bundles uploaded by IT), ``rollouts`` (a
release put on a zone, a node list or the fleet in stages) and ``rollout_nodes`` (each node's
stage and reported state).

Revision ID: 0013
Revises: 0017
Create Date: 2026-12-01 14:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('releases',
    sa.Column('version', sa.String(length=41), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('python', sa.String(length=16), nullable=False),
    sa.Column('platform', sa.String(length=64), nullable=False),
    sa.Column('key_fingerprint', sa.String(length=16), nullable=False),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_releases')))
    op.create_table('rollouts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('version', sa.String(length=41), nullable=False),
    sa.Column('target_kind', sa.String(length=8), nullable=False),
    sa.Column('target', sa.JSON(), nullable=False),
    sa.Column('stages', sa.JSON(), nullable=False),
    sa.Column('success_share', sa.Float(), nullable=False),
    sa.Column('failure_threshold', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('stage', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['version'], ['releases.version'], name=op.f('fk_rollouts_version_releases'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rollouts')))
    op.create_table('rollout_nodes',
    sa.Column('rollout_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.String(length=63), nullable=False),
    sa.Column('stage', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('published', sa.String(length=8), nullable=False),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_rollout_nodes_node_id_nodes'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rollout_id'], ['rollouts.id'],
                            name=op.f('fk_rollout_nodes_rollout_id_rollouts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('rollout_id', 'node_id', name=op.f('pk_rollout_nodes')))


def downgrade() -> None:
    op.drop_table('rollout_nodes')
    op.drop_table('rollouts')
    op.drop_table('releases')
