"""Daily rating counts kept at ingest (issue 16 item 2): ``rating_counts`` (presses per level per
local day, counter and officer; officer 0 = nobody on duty), ``rating_month_counts`` (the same per
local month) and ``rating_count_zone`` (the zone
those days are cut in: no row, as here, is the hub's default zone), filled here from the ratings
already stored, in Asia/Ho_Chi_Minh: a hub configured for another zone recounts with
``thanthien hub rebuild-counts`` (until then its reports count the ratings themselves).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 11:10:00
"""

import sqlalchemy as sa
from alembic import op

# pure helpers (zone offsets, the SQL of a local day and of its month): they read no model
from thanthien.hub.services.rating_counts import local_day, month_of, offset_segments

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ZONE = "Asia/Ho_Chi_Minh"
LEVELS = ("n1", "n2", "n3", "n4")

# the tables as they are at this revision (not the models, which move on)
ratings = sa.table("ratings", sa.column("pressed_at", sa.DateTime(timezone=True)),
                   sa.column("counter_code", sa.String()), sa.column("officer_id", sa.Integer()),
                   sa.column("score", sa.Integer()))


def _counts(name: str, when: str) -> sa.TableClause:
    return sa.table(name, sa.column(when, sa.Date()), sa.column("counter_code", sa.String()),
                    sa.column("officer_id", sa.Integer()), *(sa.column(n, sa.Integer()) for n in LEVELS))


counts, months = _counts("rating_counts", "day"), _counts("rating_month_counts", "month")


def _create_counts(name: str, when: str) -> None:
    op.create_table(
        name,
        sa.Column(when, sa.Date(), nullable=False),
        sa.Column('counter_code', sa.String(length=63), nullable=False),
        sa.Column('officer_id', sa.Integer(), autoincrement=False, nullable=False),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in LEVELS),
        sa.PrimaryKeyConstraint(when, 'counter_code', 'officer_id', name=op.f(f'pk_{name}')),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    _create_counts('rating_counts', 'day')
    _create_counts('rating_month_counts', 'month')
    op.create_table(
        'rating_count_zone',
        sa.Column('zone', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('zone', name=op.f('pk_rating_count_zone')),
    )
    bind = op.get_bind()
    pressed = ratings.c.pressed_at
    lo, hi = bind.execute(sa.select(sa.func.min(pressed), sa.func.max(pressed))).one()
    if lo is None:
        return
    # naive UTC on SQLite; aware in the session's zone on PostgreSQL (the segments span a day more
    # on either side, so that zone's date serves)
    day = local_day(ratings.c.pressed_at, dialect=bind.dialect.name,
                    segments=offset_segments(ZONE, lo.date(), hi.date()))
    source = sa.select(day, ratings.c.counter_code, sa.func.coalesce(ratings.c.officer_id, 0),
                       *(sa.func.sum(sa.case((ratings.c.score == i, 1), else_=0)) for i in (1, 2, 3, 4))
                       ).group_by(sa.text("1"), sa.text("2"), sa.text("3"))
    bind.execute(counts.insert().from_select(["day", "counter_code", "officer_id", *LEVELS], source))
    by_month = sa.select(month_of(counts.c.day, dialect=bind.dialect.name), counts.c.counter_code,
                         counts.c.officer_id, *(sa.func.sum(counts.c[n]) for n in LEVELS)
                         ).group_by(sa.text("1"), sa.text("2"), sa.text("3"))
    bind.execute(months.insert().from_select(["month", "counter_code", "officer_id", *LEVELS], by_month))


def downgrade() -> None:
    op.drop_table('rating_count_zone')
    op.drop_table('rating_month_counts')
    op.drop_table('rating_counts')
