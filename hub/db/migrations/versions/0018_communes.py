"""Communes as tenants (issue 20): ``communes``, and the commune every zone, counter, node,
officer, dossier, broadcast, media item, alarm, contact, fault report and audit entry belongs to.

Every database gets one commune, ``home`` (named after ``[hub] site_name`` at the next start,
``registry.ensure_commune``; a hub that declares its communes drops it while nothing is in it),
and every row an existing town's hub holds belongs to it. Existing users become province users
(no commune): in a one-commune hub they see what they saw.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-01 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0016'
branch_labels = None
depends_on = None

HOME = 1
# table -> whether its commune may be None (see the models for what None means)
COLUMNS = {
    'sites': False, 'zones': False, 'counters': False, 'officers': False, 'dossiers': False,
    'fault_reports': False, 'nodes': True, 'users': True, 'alarms': True, 'media_items': True,
    'broadcasts': True, 'broadcast_rules': True, 'audit_log': True, 'notify_contacts': True,
}
# rows that belong to the town the hub served (users stay province users; the hub's own alarms,
# the media library and audit entries are backfilled too: in one town they were all its)
BACKFILL = ('sites', 'zones', 'counters', 'officers', 'dossiers', 'fault_reports', 'nodes', 'alarms',
            'media_items', 'broadcasts', 'audit_log', 'notify_contacts')


def upgrade() -> None:
    communes = op.create_table(
        'communes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=63), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_communes')),
        sa.UniqueConstraint('code', name=op.f('uq_communes_code')),
    )
    op.bulk_insert(communes, [{'id': HOME, 'code': 'home', 'name': 'Xã', 'created_at': None}])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("SELECT setval(pg_get_serial_sequence('communes', 'id'), 1)")
    for table in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('commune_id', sa.Integer(), nullable=True))
    for table in BACKFILL:
        op.execute(sa.text(f'UPDATE {table} SET commune_id = :home').bindparams(home=HOME))
    op.execute(sa.text("UPDATE broadcast_rules SET commune_id = :home WHERE key = 'commune'")
               .bindparams(home=HOME))
    for table, nullable in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            if not nullable:
                batch.alter_column('commune_id', existing_type=sa.Integer(), nullable=False)
            batch.create_index(batch.f(f'ix_{table}_commune_id'), ['commune_id'], unique=False)
            batch.create_foreign_key(batch.f(f'fk_{table}_commune_id_communes'), 'communes', ['commune_id'],
                                     ['id'], ondelete='RESTRICT')


def downgrade() -> None:
    for table in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(batch.f(f'fk_{table}_commune_id_communes'), type_='foreignkey')
            batch.drop_index(batch.f(f'ix_{table}_commune_id'))
            batch.drop_column('commune_id')
    op.drop_table('communes')
