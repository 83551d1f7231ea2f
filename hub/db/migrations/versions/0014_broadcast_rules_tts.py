"""Broadcast rules by zone and speaker, the TTS pronunciation dictionary and listen-throughs
(issue 19 items 3 and 5).

``broadcast_rules`` (volume profile, daily minutes, allowed slots: the commune's, a zone's or a
speaker's override), ``tts_lexicon`` (the admin's pronunciation dictionary), ``media_listens``
(who heard which file to the end) and ``media_items.tts_spoken`` / ``tts_engine`` (what the
engine read, and which engine); ``media_items.tts_voice`` grows to hold a Piper voice's name.

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-01 13:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0012'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('broadcast_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('zone_id', sa.Integer(), nullable=True),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('volume_profile', sa.JSON(), nullable=True),
    sa.Column('daily_minutes', sa.Integer(), nullable=True),
    sa.Column('slots', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['zone_id'], ['zones.id'], name=op.f('fk_broadcast_rules_zone_id_zones'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_broadcast_rules_device_id_devices'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcast_rules')),
    sa.UniqueConstraint('key', name=op.f('uq_broadcast_rules_key'))
    )
    op.create_table('tts_lexicon',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=64), nullable=False),
    sa.Column('spoken', sa.String(length=255), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tts_lexicon')),
    sa.UniqueConstraint('term', name=op.f('uq_tts_lexicon_term'))
    )
    op.create_table('media_listens',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('listened_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_listens')),
    sa.UniqueConstraint('sha256', 'username', name='uq_media_listens_sha_user')
    )
    with op.batch_alter_table('media_items', schema=None) as batch_op:
        batch_op.alter_column('tts_voice', existing_type=sa.String(length=16), type_=sa.String(length=80),
                              existing_nullable=True)
        batch_op.add_column(sa.Column('tts_spoken', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('tts_engine', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('media_items', schema=None) as batch_op:
        batch_op.drop_column('tts_engine')
        batch_op.drop_column('tts_spoken')
        batch_op.alter_column('tts_voice', existing_type=sa.String(length=80), type_=sa.String(length=16),
                              existing_nullable=True)
    op.drop_table('media_listens')
    op.drop_table('tts_lexicon')
    op.drop_table('broadcast_rules')
