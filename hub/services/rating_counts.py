"""Rating counts kept as ratings are stored: presses per level (``n1`` … ``n4``) per local day,
counter and officer (table ``rating_counts``), and the same per local month
(``rating_month_counts``, a twelfth of the rows for a summary over months), so a report adds a
few thousand rows instead of counting millions of ratings.

Every writer of ratings keeps them right, set-based, in its own transaction:

* :func:`add` (``ratings.store_ratings``): the rows really inserted. They are queued on the
  session and upserted just before it commits, in one ``INSERT … ON CONFLICT DO UPDATE
  n = n + excluded.n`` for the whole unit of work with the keys in a fixed order, so two ingest
  workers hold these hot rows (today, a counter, its officer) only while they commit and take
  them in the same order. Inside a savepoint they are upserted at once (a savepoint rolled
  back takes them with it); a rollback forgets the queue.
* :func:`recount` (the roster, after it re-attributes stored ratings): the counter's local days
  that the window touches are counted again from the ratings, and their months summed again.
* :func:`forget_officer` (an officer deleted: ``ON DELETE SET NULL`` gives their ratings to
  nobody, so do their counts).
* :func:`rebuild` (the migration, a restore, ``thanthien hub rebuild-counts``): all of it again.

Local days are cut in the zone recorded in ``rating_count_zone`` (:data:`DEFAULT_ZONE` when no
row says otherwise); the reports read the counts only when asked for that zone. ``officer_id``
0 is "nobody on duty" (a NULL in the key would never conflict). On PostgreSQL the writers take
a transaction-level advisory lock, shared by :func:`add` and exclusive for the others, so a
recount never misses or doubles the ratings an ingest transaction is committing meanwhile
(SQLite's single writer gives that already).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Date,
    case,
    cast,
    delete,
    event,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from thanthien.hub.db import bulk
from thanthien.hub.db.models import Rating, RatingCount, RatingCountZone, RatingMonthCount

log = logging.getLogger(__name__)

DEFAULT_ZONE = "Asia/Ho_Chi_Minh"
"""The zone of a database that records none: ``hub.timezone``'s default (a test checks)."""
KEY = ("day", "counter_code", "officer_id")
MONTH_KEY = ("month", "counter_code", "officer_id")
LEVEL_COLUMNS = ("n1", "n2", "n3", "n4")
NOBODY = 0
LOCK_KEY = 0x7468_616E_0016  # PostgreSQL advisory lock of the counts ("than", issue 16)
_PENDING = "thanthien.rating_counts.pending"
_STEP_S = 6 * 3600  # offsets are sampled this often, then bisected to the second

Bind = Session | Connection
Segments = tuple[tuple[datetime | None, int], ...]


def _dialect(bind: Bind) -> str:
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name


# -- local days in SQL -----------------------------------------------------------------------
@lru_cache(maxsize=512)
def offset_segments(zone: str, first: date, last: date) -> Segments:
    """The zone's UTC offsets (in seconds) around the UTC days ``first`` … ``last``, as
    ``(until, offset)`` pairs: each offset holds before ``until``, the last (``until`` None)
    from then on. Asia/Ho_Chi_Minh has one since 1975."""
    tz = ZoneInfo(zone)

    def offset(ts: int) -> int:
        delta = datetime.fromtimestamp(ts, UTC).astimezone(tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    at = int(datetime.combine(first - timedelta(days=1), time(), UTC).timestamp())
    stop = int(datetime.combine(last + timedelta(days=2), time(), UTC).timestamp())
    current = offset(at)
    out: list[tuple[datetime | None, int]] = []
    while at < stop:
        nxt = min(at + _STEP_S, stop)
        if offset(nxt) == current:
            at = nxt
            continue
        lo, hi = at, nxt
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if offset(mid) == current else (lo, mid)
        out.append((datetime.fromtimestamp(hi, UTC), current))
        current, at = offset(hi), hi
    out.append((None, current))
    return tuple(out)


def local_day(column: Any, *, dialect: str, segments: Segments) -> Any:
    """SQL for the local date of the UTC instant ``column`` (valid over the segments' span)."""
    def shifted(offset: int) -> Any:
        if dialect == "postgresql":
            return cast(func.timezone("UTC", column) + literal_column(f"INTERVAL '{int(offset)} seconds'"),
                        Date)
        return func.date(column, f"{int(offset):+d} seconds")

    *bounded, (_, last) = segments
    if not bounded:
        return shifted(last)
    return case(*((column < until, shifted(off)) for until, off in bounded), else_=shifted(last))


def press_day(bind: Bind, *, zone: str, lo: datetime, hi: datetime) -> Any:
    """SQL for the local day of ``ratings.pressed_at``, for presses from ``lo`` to ``hi``."""
    return local_day(Rating.pressed_at, dialect=_dialect(bind),
                     segments=offset_segments(zone, lo.astimezone(UTC).date(), hi.astimezone(UTC).date()))


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local day, in UTC."""
    return datetime.combine(day, time(), tz).astimezone(UTC)


def month_of(column: Any, *, dialect: str) -> Any:
    """SQL for the first day of the month of a date column."""
    if dialect == "postgresql":
        return cast(func.date_trunc("month", column), Date)
    return func.date(column, "start of month")


def next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def as_date(value: Any) -> date:
    """A date from the database (SQLite gives ``YYYY-MM-DD`` text)."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def by_position(*numbers: int) -> list[Any]:
    """``GROUP BY 1, 2, …``: PostgreSQL would not match an expression with bound values
    (``timezone('UTC', …)``) to its copy in the select list."""
    return [text(str(n)) for n in numbers]


# -- the zone and the lock -------------------------------------------------------------------
def recorded_zone(bind: Bind) -> str:
    return bind.execute(select(RatingCountZone.zone).limit(1)).scalar() or DEFAULT_ZONE


_warned: set[tuple[str, str]] = set()


def cut_in(bind: Bind, zone: str) -> bool:
    """Whether the counts are cut in ``zone`` (else a report counts the ratings themselves)."""
    recorded = recorded_zone(bind)
    if recorded != zone and (recorded, zone) not in _warned:
        _warned.add((recorded, zone))
        log.warning("rating counts are cut in %s, reports are asked in %s: they count the ratings "
                    "themselves (slow) until `thanthien hub rebuild-counts` cuts the counts in %s",
                    recorded, zone, zone)
    return recorded == zone


def _lock(bind: Bind, *, exclusive: bool) -> None:
    if _dialect(bind) == "postgresql":
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        bind.execute(text(f"SELECT {fn}(:key)"), {"key": LOCK_KEY})


def _upsert(dialect: str, model: Any, source: Any = None) -> Any:
    """``INSERT … ON CONFLICT (day or month, counter, officer) DO UPDATE SET n = n + excluded.n``
    into ``model``'s table, of parameters or of ``source`` (a select of the key and the counts)."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    key = KEY if model is RatingCount else MONTH_KEY
    stmt = module.insert(model)
    if source is not None:
        stmt = stmt.from_select([*key, *LEVEL_COLUMNS], source)
    table = model.__table__
    return stmt.on_conflict_do_update(index_elements=list(key),
                                      set_={c: table.c[c] + stmt.excluded[c] for c in LEVEL_COLUMNS})


# -- new ratings -----------------------------------------------------------------------------
def add(session: Session, *, rows: Iterable[Mapping[str, Any]]) -> None:
    """Count newly stored ratings: dicts with ``pressed_at``, ``counter_code``, ``officer_id``
    and ``score`` (the rows ``store_ratings`` inserted, duplicates left out)."""
    items = [(r["pressed_at"], r["counter_code"], r["officer_id"] or NOBODY, int(r["score"])) for r in rows]
    if bad := [score for *_, score in items if not 1 <= score <= 4]:
        raise ValueError(f"scores are 1..4, not {bad[0]}")
    if not items:
        return
    if session.in_nested_transaction():
        _store(session, items)
    else:
        session.info.setdefault(_PENDING, []).extend(items)


def flush(session: Session) -> None:
    """Upsert what :func:`add` queued on this session (done before it commits, and by the
    readers and writers of counts in the same unit of work)."""
    items = session.info.pop(_PENDING, None)
    if items:
        _store(session, items)


def _store(bind: Bind, items: list[tuple[datetime, str, int, int]]) -> None:
    _lock(bind, exclusive=False)
    tz = ZoneInfo(recorded_zone(bind))
    days: dict[tuple[date, str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    months: dict[tuple[date, str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for at, counter, officer, score in items:
        day = at.astimezone(tz).date()
        days[(day, counter, officer)][score - 1] += 1
        months[(day.replace(day=1), counter, officer)][score - 1] += 1
    for model, key, sums in ((RatingCount, KEY, days), (RatingMonthCount, MONTH_KEY, months)):
        rows = [(*k, *n) for k, n in sorted(sums.items())]  # in key order: two writers take rows alike
        if isinstance(bind, Session):  # the ingest: through the driver (hub/db/bulk.py)
            bulk.upsert_sums(bind, model.__table__, key, LEVEL_COLUMNS, rows)
        else:
            bind.execute(_upsert(_dialect(bind), model),
                         [dict(zip((*key, *LEVEL_COLUMNS), row, strict=True)) for row in rows])


@event.listens_for(Session, "before_commit")
def _count_before_commit(session: Session) -> None:
    flush(session)


@event.listens_for(Session, "after_transaction_end")
def _forget_after_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # committed (flushed before), rolled back or closed
        session.info.pop(_PENDING, None)


# -- ratings that change or come back ----------------------------------------------------------
def _count_ratings(bind: Bind, *, zone: str, lo: datetime, hi: datetime, where: list[Any]) -> None:
    """INSERT INTO rating_counts the GROUP BY of the ratings matching ``where`` (pressed from
    ``lo`` to ``hi``), where no counts are (deleted first)."""
    day = press_day(bind, zone=zone, lo=lo, hi=hi)
    levels = [func.sum(case((Rating.score == level, 1), else_=0)) for level in (1, 2, 3, 4)]
    source = (select(day, Rating.counter_code, func.coalesce(Rating.officer_id, NOBODY), *levels)
              .where(*where).group_by(*by_position(1, 2, 3)))
    bind.execute(RatingCount.__table__.insert().from_select([*KEY, *LEVEL_COLUMNS], source))


def _count_months(bind: Bind, *, first: date | None = None, stop: date | None = None,
                  counter_code: str | None = None) -> None:
    """Sum the daily counts again into the months [first, stop) (all: None) of one counter (all)."""
    d, m = RatingCount, RatingMonthCount
    gone, where = delete(m), []
    if counter_code is not None:
        gone, where = gone.where(m.counter_code == counter_code), [d.counter_code == counter_code]
    if first is not None and stop is not None:
        gone = gone.where(m.month >= first, m.month < stop)
        where += [d.day >= first, d.day < stop]
    bind.execute(gone)
    source = (select(month_of(d.day, dialect=_dialect(bind)), d.counter_code, d.officer_id,
                     *(func.sum(d.__table__.c[c]) for c in LEVEL_COLUMNS))
              .where(*where).group_by(*by_position(1, 2, 3)))
    bind.execute(m.__table__.insert().from_select([*MONTH_KEY, *LEVEL_COLUMNS], source))


def recount(session: Session, *, counter_code: str, start: datetime, end: datetime) -> None:
    """Count again the ratings of ``counter_code`` on every local day that [start, end)
    touches: call it after changing their officers (the roster does)."""
    if end <= start:
        return
    flush(session)
    _lock(session, exclusive=True)
    zone = recorded_zone(session)
    tz = ZoneInfo(zone)
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    lo, hi = day_start(first, tz), day_start(last + timedelta(days=1), tz)
    session.execute(delete(RatingCount).where(RatingCount.counter_code == counter_code,
                                              RatingCount.day >= first, RatingCount.day <= last))
    _count_ratings(session, zone=zone, lo=lo, hi=hi, where=[
        Rating.counter_code == counter_code, Rating.pressed_at >= lo, Rating.pressed_at < hi])
    _count_months(session, first=first.replace(day=1), stop=next_month(last), counter_code=counter_code)


def forget_officer(session: Session, *, officer_id: int) -> None:
    """Before an officer is deleted: their counts go to nobody, as their ratings do."""
    flush(session)
    _lock(session, exclusive=True)
    for t, when in ((RatingCount, RatingCount.day), (RatingMonthCount, RatingMonthCount.month)):
        moved = (select(when, t.counter_code, literal(NOBODY), t.n1, t.n2, t.n3, t.n4)
                 .where(t.officer_id == officer_id))
        session.execute(_upsert(_dialect(session), t, moved))
        session.execute(delete(t).where(t.officer_id == officer_id))


def rebuild(bind: Bind, *, zone: str | None = None) -> int:
    """Count every stored rating again, cut in ``zone`` (then recorded) or in the zone the
    counts are already cut in; the number of daily count rows."""
    if isinstance(bind, Session):
        flush(bind)
    _lock(bind, exclusive=True)
    if zone is None:
        zone = recorded_zone(bind)
    else:
        ZoneInfo(zone)  # refuse an unknown zone before anything changes
        bind.execute(delete(RatingCountZone))
        bind.execute(RatingCountZone.__table__.insert().values(zone=zone))
    bind.execute(delete(RatingCount))
    lo = bind.execute(select(func.min(Rating.pressed_at))).scalar()
    hi = bind.execute(select(func.max(Rating.pressed_at))).scalar()
    if lo is not None and hi is not None:
        _count_ratings(bind, zone=zone, lo=_utc(lo), hi=_utc(hi), where=[])
    _count_months(bind)
    return int(bind.execute(select(func.count()).select_from(RatingCount)).scalar() or 0)


def _utc(value: Any) -> datetime:
    if isinstance(value, str):  # an aggregate over SQLite text skips the column's type
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
