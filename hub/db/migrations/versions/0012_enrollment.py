"""Node enrollment codes, credentials and remote configuration (issue 15 items 3-6).

``enrollment_codes`` (one-time, hashed), ``node_credentials`` (the broker identity issued at
enrollment: a Mosquitto password hash or a certificate serial; revoked on re-enrollment and
retirement), ``node_configs`` (what the hub holds of each node's configuration, the version
published and what the node reports), ``node_commands`` (commands from the page and the API
with their answers), ``node_state_changes`` (each node's state history) and
``camera_thumbnails`` (the last picture of each camera); ``nodes.retired_at``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 11:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table('enrollment_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.String(length=63), nullable=False),
    sa.Column('code_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_from', sa.String(length=64), nullable=False),
    sa.Column('replaced_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_enrollment_codes_node_id_nodes'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollment_codes')),
    sa.UniqueConstraint('code_sha256', name=op.f('uq_enrollment_codes_code_sha256'))
    )
    with op.batch_alter_table('enrollment_codes', schema=None) as batch_op:
        batch_op.create_index('ix_enrollment_codes_node', ['node_id', 'created_at'], unique=False)

    op.create_table('node_credentials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('cert_serial', sa.String(length=40), nullable=True),
    sa.Column('cert_not_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoke_reason', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_node_credentials'))
    )
    with op.batch_alter_table('node_credentials', schema=None) as batch_op:
        batch_op.create_index('ix_node_credentials_node', ['node_id', 'issued_at'], unique=False)

    op.create_table('node_configs',
    sa.Column('node_id', sa.String(length=63), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('reported_version', sa.Integer(), nullable=True),
    sa.Column('reported_refused', sa.Integer(), nullable=True),
    sa.Column('reported_error', sa.String(length=1000), nullable=False),
    sa.Column('reported_restart', sa.JSON(), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_node_configs_node_id_nodes'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('node_id', name=op.f('pk_node_configs'))
    )

    op.create_table('node_commands',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('node_id', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_node_commands'))
    )
    with op.batch_alter_table('node_commands', schema=None) as batch_op:
        batch_op.create_index('ix_node_commands_node_sent', ['node_id', 'sent_at'], unique=False)

    op.create_table('node_state_changes',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('node_id', sa.String(length=63), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('session', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_node_state_changes'))
    )
    with op.batch_alter_table('node_state_changes', schema=None) as batch_op:
        batch_op.create_index('ix_node_state_changes_node_at', ['node_id', 'at'], unique=False)

    op.create_table('camera_thumbnails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.String(length=63), nullable=False),
    sa.Column('camera', sa.String(length=63), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('jpeg', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_thumbnails')),
    sa.UniqueConstraint('node_id', 'camera', name='uq_camera_thumbnails_node_camera')
    )


def downgrade() -> None:
    op.drop_table('camera_thumbnails')
    with op.batch_alter_table('node_state_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_node_state_changes_node_at')
    op.drop_table('node_state_changes')
    with op.batch_alter_table('node_commands', schema=None) as batch_op:
        batch_op.drop_index('ix_node_commands_node_sent')
    op.drop_table('node_commands')
    op.drop_table('node_configs')
    with op.batch_alter_table('node_credentials', schema=None) as batch_op:
        batch_op.drop_index('ix_node_credentials_node')
    op.drop_table('node_credentials')
    with op.batch_alter_table('enrollment_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_enrollment_codes_node')
    op.drop_table('enrollment_codes')
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("retired_at")
