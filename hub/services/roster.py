"""The duty roster (lịch trực): a weekly pattern per counter and its exceptions; who is on duty
at a counter at any moment; stored ratings following a change, counted before it is made.

Who is on duty at a counter at an instant:

1. an exception that puts an officer at the counter then (``swap``: they stand in for whoever
   the pattern names; ``extra``: a one-off day) names them;
2. else the weekly pattern's officer for that local weekday and time, unless they are on
   ``leave`` then (nobody is);
3. else nobody.

Every edit is built first (:func:`new_pattern`, :func:`end_pattern`, :func:`new_exception`,
:func:`drop_exception`, each checking its rules and the acting user), then either counted
(:func:`preview`: how many stored ratings would change officer, nothing written) or made
(:func:`apply`: the rows, the ratings that change officer, one audit entry). The API's
``?dry_run=true`` and the page's confirmation step are those two calls.

Communes (issue 20): a pattern or an exception is the commune of its counter and officer (they
are the same commune: an officer of one commune is never put on another's counter). A commune
user reads and edits only their commune's rows; another commune's counter, officer, pattern or
exception is not found to them. A leave has no counter: it is the officer's commune's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, or_, select, true, update
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Counter, Officer, Rating, RosterException, RosterPattern
from thanthien.hub.roles import ROSTER_EDITORS, Actor, require
from thanthien.hub.services import audit, rating_counts
from thanthien.hub.services.errors import Conflict, Invalid, NotFound
from thanthien.hub.tenancy import Tenant, require_reach, visible_clause

KINDS: Final = ("leave", "swap", "extra")
COVERS: Final = ("swap", "extra")
"""Exception kinds that put their officer at a counter."""
DAY_MIN: Final = 24 * 60
MAX_NOTE: Final = 200
FIRST_YEAR, LAST_YEAR = 2000, 2100
"""Dates a roster row may name (outside them: a typing mistake, and no arithmetic overflows)."""
MAX_VIEW_DAYS: Final = 92
WEEKDAY_NAMES: Final = {1: "Thứ Hai", 2: "Thứ Ba", 3: "Thứ Tư", 4: "Thứ Năm", 5: "Thứ Sáu", 6: "Thứ Bảy",
                        7: "Chủ nhật"}
KIND_NAMES: Final = {"leave": "nghỉ phép", "swap": "đổi ca", "extra": "ca đột xuất"}
_CHUNK: Final = 500


# -- the rows, as values ---------------------------------------------------------------------
@dataclass(frozen=True)
class Weekly:
    """A weekly pattern row (``RosterPattern``), its counter named by code."""

    counter: str
    officer_id: int
    weekdays: frozenset[int]
    starts_min: int
    ends_min: int
    tz: str
    valid_from: date
    valid_until: date | None = None
    id: int | None = None

    def on_duty(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.tz))
        day = local.date()
        if day < self.valid_from or (self.valid_until is not None and day > self.valid_until):
            return False
        minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
        return local.isoweekday() in self.weekdays and self.starts_min <= minute < self.ends_min

    def span(self) -> tuple[datetime, datetime | None]:
        """The instants this row can cover (``None``: open-ended)."""
        return _day_start(self.valid_from, self.tz), \
            None if self.valid_until is None else _day_start(self.valid_until + timedelta(days=1), self.tz)

    def clashes(self, other: Weekly) -> bool:
        """Same counter, a common weekday, overlapping hours and overlapping validity."""
        return (self.counter == other.counter and bool(self.weekdays & other.weekdays)
                and self.starts_min < other.ends_min and other.starts_min < self.ends_min
                and (other.valid_until is None or self.valid_from <= other.valid_until)
                and (self.valid_until is None or other.valid_from <= self.valid_until))

    @property
    def hours(self) -> str:
        return f"{hhmm(self.starts_min)}–{hhmm(self.ends_min)}"

    def describe(self) -> dict[str, Any]:
        return {"counter": self.counter, "officer": self.officer_id, "weekdays": sorted(self.weekdays),
                "hours": self.hours, "valid_from": self.valid_from, "valid_until": self.valid_until}


@dataclass(frozen=True)
class Deviation:
    """An exception row (``RosterException``): leave, a swap or a one-off day."""

    kind: str
    officer_id: int
    counter: str | None
    starts_at: datetime
    ends_at: datetime
    note: str = ""
    id: int | None = None

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def overlaps(self, other: Deviation) -> bool:
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "counter": self.counter, "officer": self.officer_id,
                "starts_at": self.starts_at, "ends_at": self.ends_at, "note": self.note}


def counter_label(name: str) -> str:
    """A counter as a sentence names it: its name when that says "Quầy" already."""
    return name if name.lower().startswith("quầy") else f"Quầy {name}"


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_hhmm(text: str) -> int:
    """``"07:30"`` -> 450; ``"24:00"`` (the end of the day) -> 1440."""
    try:
        hours, minutes = (int(part) for part in text.strip().split(":"))
    except ValueError:
        raise Invalid(f"Giờ {text!r} không hợp lệ (dạng HH:MM).") from None
    value = hours * 60 + minutes
    if not (0 <= hours <= 24 and 0 <= minutes < 60 and value <= DAY_MIN):
        raise Invalid(f"Giờ {text!r} không hợp lệ (dạng HH:MM).")
    return value


def _day_start(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(tz)).astimezone(UTC)


def check_days(*days: date | None) -> None:
    if any(d is not None and not FIRST_YEAR <= d.year <= LAST_YEAR for d in days):
        raise Invalid(f"Ngày phải trong các năm {FIRST_YEAR}–{LAST_YEAR}.")


def _date_near(at: datetime, days: int) -> date:
    """The date ``days`` after ``at`` (the first or last date there is, past either end)."""
    try:
        return (at + timedelta(days=days)).date()
    except OverflowError:
        return date.max if days > 0 else date.min


def parse_day(text: str) -> date:
    """A date as a form sends it (``YYYY-MM-DD``)."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(f"Ngày {text!r} không hợp lệ.") from None


def local_day(at: datetime, tz: str) -> date:
    return at.astimezone(ZoneInfo(tz)).date()


def local_span(first: date, last: date | None, starts: str | None, ends: str | None,
               tz: str) -> tuple[datetime, datetime]:
    """[``starts`` on ``first``, ``ends`` on ``last``) in local time, as UTC instants; a time left
    out is the whole day (00:00, 24:00), a last day left out is the first."""
    last = last or first
    check_days(first, last)
    a = _day_start(first, tz) + timedelta(minutes=parse_hhmm(starts) if starts else 0)
    b = _day_start(last, tz) + timedelta(minutes=parse_hhmm(ends) if ends else DAY_MIN)
    return a, b


def _weekly(row: RosterPattern, counter: str) -> Weekly:
    return Weekly(counter=counter, officer_id=row.officer_id, weekdays=frozenset(row.weekdays),
                  starts_min=row.starts_min, ends_min=row.ends_min, tz=row.timezone,
                  valid_from=row.valid_from, valid_until=row.valid_until, id=row.id)


def _deviation(row: RosterException, counter: str | None) -> Deviation:
    return Deviation(kind=row.kind, officer_id=row.officer_id, counter=counter, starts_at=row.starts_at,
                     ends_at=row.ends_at, note=row.note, id=row.id)


# -- who is on duty ----------------------------------------------------------------------------
class Roster:
    """The roster rows that matter over some span, and who they put on duty."""

    def __init__(self, weekly: Iterable[Weekly], deviations: Iterable[Deviation]) -> None:
        self.weekly = list(weekly)
        self.deviations = list(deviations)
        self._weekly: dict[str, list[Weekly]] = defaultdict(list)
        self._covers: dict[str, list[Deviation]] = defaultdict(list)
        self._leave: dict[int, list[Deviation]] = defaultdict(list)
        for w in self.weekly:
            self._weekly[w.counter].append(w)
        for d in self.deviations:
            if d.kind == "leave":
                self._leave[d.officer_id].append(d)
            elif d.counter is not None:
                self._covers[d.counter].append(d)

    def on_duty(self, counter: str, at: datetime) -> int | None:
        for d in self._covers.get(counter, ()):
            if d.covers(at):
                return d.officer_id
        for w in self._weekly.get(counter, ()):
            if w.on_duty(at):
                return None if self.on_leave(w.officer_id, at) else w.officer_id
        return None

    def on_leave(self, officer_id: int, at: datetime) -> bool:
        return any(d.covers(at) for d in self._leave.get(officer_id, ()))

    def pattern_officer(self, counter: str, at: datetime) -> int | None:
        """Whom the weekly pattern names, exceptions aside (whom a swap stands in for)."""
        return next((w.officer_id for w in self._weekly.get(counter, ()) if w.on_duty(at)), None)

    def changed(self, change: Change) -> Roster:
        """This roster with ``change`` made (in memory)."""
        ended = dict(change.end_weekly)
        weekly = [replace(w, valid_until=ended[w.id]) if w.id in ended else w
                  for w in self.weekly if w.id not in change.drop_weekly]
        deviations = [d for d in self.deviations if d.id not in change.drop_deviations]
        return Roster([*weekly, *change.add_weekly], [*deviations, *change.add_deviations])


def load(session: Session, *, counters: Collection[str] | None, start: datetime | None,
         end: datetime | None) -> Roster:
    """The pattern rows of these counters (every counter for ``None``) valid in [start, end),
    the exceptions at them and every leave in that span: two queries."""
    weekly = select(RosterPattern, Counter.code).join(Counter, Counter.id == RosterPattern.counter_id)
    if counters is not None:
        weekly = weekly.where(Counter.code.in_(sorted(counters)))
    if end is not None:  # local dates: a day of slack either way covers any time zone
        weekly = weekly.where(RosterPattern.valid_from <= _date_near(end, 1))
    if start is not None:
        weekly = weekly.where(or_(RosterPattern.valid_until.is_(None),
                                  RosterPattern.valid_until >= _date_near(start, -1)))
    deviations = select(RosterException, Counter.code).outerjoin(Counter,
                                                                  Counter.id == RosterException.counter_id)
    if counters is not None:
        deviations = deviations.where(or_(RosterException.kind == "leave",
                                          Counter.code.in_(sorted(counters))))
    if end is not None:
        deviations = deviations.where(RosterException.starts_at < end)
    if start is not None:
        deviations = deviations.where(RosterException.ends_at > start)
    return Roster([_weekly(row, code) for row, code in session.execute(weekly)],
                  [_deviation(row, code) for row, code in session.execute(deviations)])


def officers_on_duty(session: Session, *, presses: Sequence[tuple[str, datetime]]) -> list[int | None]:
    """The officer on duty for each (counter code, press time), in order; ``None`` if nobody.
    Two queries for the whole batch, whatever its size."""
    if not presses:
        return []
    times = [at for _code, at in presses]
    roster = load(session, counters={code for code, _at in presses}, start=min(times),
                  end=max(times) + timedelta(microseconds=1))
    return [roster.on_duty(code, at) for code, at in presses]


# -- edits ---------------------------------------------------------------------------------------
Window = tuple[frozenset[str] | None, datetime, datetime | None]
"""Counters (``None``: every counter), from, until (``None``: open-ended)."""


@dataclass(frozen=True)
class Change:
    """A roster edit before it is made: rows it adds, ends and removes, where stored ratings may
    change officer, and what it says in the audit log."""

    action: str
    subject: str
    details: dict[str, Any]
    windows: tuple[Window, ...]
    add_weekly: tuple[Weekly, ...] = ()
    end_weekly: tuple[tuple[int, date], ...] = ()
    drop_weekly: frozenset[int] = frozenset()
    add_deviations: tuple[Deviation, ...] = ()
    drop_deviations: frozenset[int] = frozenset()
    commune_id: int | None = None
    """The commune of the rows changed (its audit entry's)."""


@dataclass(frozen=True)
class Reattributed:
    """A stored rating whose officer a change moves (what the daily counts follow too)."""

    rating_id: int
    counter: str
    pressed_at: datetime
    score: int
    from_officer: int | None
    to_officer: int | None


@dataclass(frozen=True)
class Impact:
    """What a change does to stored ratings."""

    ratings: tuple[Reattributed, ...] = ()

    @property
    def count(self) -> int:
        return len(self.ratings)

    def moves(self) -> list[tuple[int | None, int | None, int]]:
        """(from officer, to officer, ratings), most first."""
        pairs: dict[tuple[int | None, int | None], int] = defaultdict(int)
        for r in self.ratings:
            pairs[(r.from_officer, r.to_officer)] += 1
        return sorted(((a, b, n) for (a, b), n in pairs.items()), key=lambda m: (-m[2], str(m[:2])))


@dataclass
class Applied:
    impact: Impact
    patterns: list[RosterPattern] = field(default_factory=list)
    exceptions: list[RosterException] = field(default_factory=list)


def _counter(session: Session, code: str, *, active: bool = True, viewer: Tenant | None = None) -> Counter:
    row = session.scalar(select(Counter).where(Counter.code == code))
    if row is None:
        raise NotFound(f"Không có quầy {code!r}.")
    if viewer is not None:
        require_reach(viewer, row.commune_id, what=f"Quầy {code!r}")
    if active and row.retired_at is not None:
        raise Invalid(f"{counter_label(row.name)} đã ngừng sử dụng.")
    return row


def _officer(session: Session, officer_id: int, *, active: bool = True,
             viewer: Tenant | None = None) -> Officer:
    row = session.get(Officer, officer_id)
    if row is None:
        raise NotFound(f"Không có cán bộ số {officer_id}.")
    if viewer is not None:
        require_reach(viewer, row.commune_id, what=f"Cán bộ số {officer_id}")
    if active and row.retired_at is not None:
        raise Invalid(f"Cán bộ {row.full_name} đã ngừng công tác.")
    return row


def _same_commune(counter: Counter, officer: Officer) -> None:
    """An officer staffs only their own commune's counters."""
    if counter.commune_id != officer.commune_id:
        raise Invalid(f"Cán bộ {officer.full_name} không thuộc xã/phường của {counter_label(counter.name)}.")


def _dmy(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def _local(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%H:%M %d/%m/%Y")


def new_pattern(session: Session, *, actor: Actor, counter: str, officer_id: int, weekdays: Iterable[int],
                starts: str, ends: str, valid_from: date, valid_until: date | None = None, tz: str) -> Change:
    """An officer staffs a counter on these weekdays (1 = Monday) from ``starts`` to ``ends``
    (local ``HH:MM``; ``24:00`` is midnight), from ``valid_from`` (local date) on."""
    require(actor, ROSTER_EDITORS)
    days = frozenset(weekdays)
    if not days or not days <= set(WEEKDAY_NAMES):
        raise Invalid("Chọn ít nhất một ngày trong tuần.")
    a, b = parse_hhmm(starts), parse_hhmm(ends)
    if b <= a:
        raise Invalid("Giờ kết thúc ca phải sau giờ bắt đầu.")
    check_days(valid_from, valid_until)
    if valid_until is not None and valid_until < valid_from:
        raise Invalid("Ngày kết thúc phải từ ngày bắt đầu trở đi.")
    counter_row = _counter(session, counter, viewer=actor)
    officer = _officer(session, officer_id, viewer=actor)
    _same_commune(counter_row, officer)
    row = Weekly(counter=counter, officer_id=officer_id, weekdays=days, starts_min=a, ends_min=b, tz=tz,
                 valid_from=valid_from, valid_until=valid_until)
    current = load(session, counters={counter}, start=row.span()[0], end=row.span()[1])
    for other in current.weekly:
        if row.clashes(other):
            taken = session.get(Officer, other.officer_id)
            who = taken.full_name if taken else other.officer_id
            shared = ", ".join(WEEKDAY_NAMES[d] for d in sorted(row.weekdays & other.weekdays))
            raise Conflict(f"{counter_label(counter_row.name)} đã có {who} "
                           f"trực {shared} {other.hours} từ {_dmy(other.valid_from)}"
                           + (f" đến {_dmy(other.valid_until)}" if other.valid_until else "")
                           + ". Hãy kết thúc ca đó trước.")
    start, end = row.span()
    return Change(action="roster.add", subject=f"roster:{counter}",
                  details={"pattern": row.describe(), "officer_name": officer.full_name},
                  windows=((frozenset({counter}), start, end),), add_weekly=(row,),
                  commune_id=counter_row.commune_id)


def end_pattern(session: Session, *, actor: Actor, pattern_id: int, last_day: date) -> Change:
    """The pattern row stops after ``last_day`` (local date, inclusive); ending it before it began
    removes it, with every rating it named."""
    require(actor, ROSTER_EDITORS)
    found = session.execute(select(RosterPattern, Counter.code, Counter.commune_id)
                            .join(Counter, Counter.id == RosterPattern.counter_id)
                            .where(RosterPattern.id == pattern_id, visible_clause(actor, Counter.commune_id))
                            ).first()
    if found is None:
        raise NotFound(f"Không có ca trực số {pattern_id} trong lịch tuần.")
    row = _weekly(found[0], found[1])
    commune_id = found[2]
    check_days(last_day)
    if row.valid_until is not None and last_day >= row.valid_until:
        raise Invalid(f"Ca này đã kết thúc ngày {_dmy(row.valid_until)}.")
    base = {"pattern": row.describe()}
    if last_day < row.valid_from:
        start, end = row.span()
        return Change(action="roster.remove", subject=f"roster:{row.counter}", details=base,
                      windows=((frozenset({row.counter}), start, end),),
                      drop_weekly=frozenset({pattern_id}), commune_id=commune_id)
    start = _day_start(last_day + timedelta(days=1), row.tz)
    return Change(action="roster.remove", subject=f"roster:{row.counter}",
                  details={**base, "last_day": last_day},
                  windows=((frozenset({row.counter}), start, row.span()[1]),),
                  end_weekly=((pattern_id, last_day),), commune_id=commune_id)


def new_exception(session: Session, *, actor: Actor, kind: str, officer_id: int, counter: str | None,
                  starts_at: datetime, ends_at: datetime, note: str = "", tz: str = "UTC") -> Change:
    """Leave (the officer is away from every counter), a swap or a one-off day (the officer
    staffs ``counter``) for [starts_at, ends_at)."""
    require(actor, ROSTER_EDITORS)
    if kind not in KINDS:
        raise Invalid(f"Loại ngoại lệ {kind!r} không có (nghỉ phép, đổi ca, ca đột xuất).")
    check_days(starts_at.date(), ends_at.date())
    if ends_at <= starts_at:
        raise Invalid("Thời gian kết thúc phải sau thời gian bắt đầu.")
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise Invalid(f"Ghi chú dài quá {MAX_NOTE} ký tự.")
    officer = _officer(session, officer_id, viewer=actor)
    if kind == "leave":
        counter = None
    elif counter is None:
        raise Invalid("Chọn quầy cho ca đổi hoặc ca đột xuất.")
    else:
        _same_commune(_counter(session, counter, viewer=actor), officer)
    row = Deviation(kind=kind, officer_id=officer_id, counter=counter, starts_at=starts_at, ends_at=ends_at,
                    note=note)
    current = load(session, counters={counter} if counter else None, start=starts_at, end=ends_at)
    for other in current.deviations:
        if not row.overlaps(other):
            continue
        when = f"từ {_local(other.starts_at, tz)} đến {_local(other.ends_at, tz)}"
        if row.kind != "leave" and other.kind != "leave" and other.counter == counter:
            taken = session.get(Officer, other.officer_id)
            raise Conflict(f"Quầy đã có {taken.full_name if taken else other.officer_id} "
                           f"({KIND_NAMES[other.kind]}) {when}.")
        if other.officer_id == officer_id and "leave" in (row.kind, other.kind):
            raise Conflict(f"{officer.full_name} có {KIND_NAMES[other.kind]} {when}.")
    if kind == "leave":
        subject, windows = f"roster:officer:{officer.code}", ((None, starts_at, ends_at),)
    else:
        subject, windows = f"roster:{counter}", ((frozenset({counter}), starts_at, ends_at),)
    return Change(action="roster.add", subject=subject,
                  details={"exception": row.describe(), "officer_name": officer.full_name},
                  windows=windows, add_deviations=(row,), commune_id=officer.commune_id)


def drop_exception(session: Session, *, actor: Actor, exception_id: int, kind: str | None = None) -> Change:
    """Remove an exception (``kind``: only one of that kind)."""
    require(actor, ROSTER_EDITORS)
    found = session.execute(select(RosterException, Counter.code)
                            .outerjoin(Counter, Counter.id == RosterException.counter_id)
                            .join(Officer, Officer.id == RosterException.officer_id)
                            .where(RosterException.id == exception_id,
                                   visible_clause(actor, Officer.commune_id))).first()
    if found is None or (kind is not None and found[0].kind != kind):
        raise NotFound(f"Không có ngoại lệ số {exception_id} trong lịch trực.")
    row = _deviation(found[0], found[1])
    officer = session.get(Officer, row.officer_id)
    if row.counter is None:
        subject = f"roster:officer:{officer.code if officer else row.officer_id}"
        windows: tuple[Window, ...] = ((None, row.starts_at, row.ends_at),)
    else:
        subject, windows = f"roster:{row.counter}", ((frozenset({row.counter}), row.starts_at, row.ends_at),)
    return Change(action="roster.remove", subject=subject,
                  details={"exception": {**row.describe(), "id": row.id},
                           "officer_name": officer.full_name if officer else None},
                  windows=windows, drop_deviations=frozenset({exception_id}),
                  commune_id=officer.commune_id if officer else None)


# -- counting, then making the change ------------------------------------------------------------
def _span(windows: Sequence[Window]) -> tuple[frozenset[str] | None, datetime, datetime | None]:
    counters: frozenset[str] | None = frozenset()
    for cs, _s, _e in windows:
        counters = None if cs is None or counters is None else counters | cs
    ends = [e for _c, _s, e in windows]
    return counters, min(s for _c, s, _e in windows), None if None in ends else max(e for e in ends if e)


def preview(session: Session, change: Change) -> Impact:
    """The stored ratings ``change`` would move to another officer (or to nobody); writes nothing."""
    counters, start, end = _span(change.windows)
    roster = load(session, counters=counters, start=start, end=end).changed(change)
    where = []
    for cs, s, e in change.windows:
        where.append(and_(Rating.counter_code.in_(sorted(cs)) if cs is not None else true(),
                          Rating.pressed_at >= s, Rating.pressed_at < e if e is not None else true()))
    rows = session.execute(select(Rating.id, Rating.counter_code, Rating.pressed_at, Rating.score,
                                  Rating.officer_id).where(or_(*where)).order_by(Rating.id))
    moved = []
    for rating_id, counter, pressed_at, score, officer_id in rows:
        now_on = roster.on_duty(counter, pressed_at)
        if now_on != officer_id:
            moved.append(Reattributed(rating_id, counter, pressed_at, score, officer_id, now_on))
    return Impact(tuple(moved))


def apply(session: Session, change: Change, *, actor: Actor, now: datetime | None = None,
          expected: int | None = None) -> Applied:
    """Make ``change``: its rows, the stored ratings it moves, one audit entry. ``expected``
    (the count the person was shown) refuses it when the count is no longer that."""
    require(actor, ROSTER_EDITORS)
    impact = preview(session, change)
    if expected is not None and impact.count != expected:
        raise Conflict(f"Số lượt đánh giá đổi cán bộ nay là {impact.count}, không còn là {expected} "
                       "như lúc xem trước. Hãy xem lại rồi xác nhận.")
    out = Applied(impact)
    codes = {w.counter for w in change.add_weekly} | {d.counter for d in change.add_deviations if d.counter}
    counter_ids = dict(session.execute(select(Counter.code, Counter.id)
                                       .where(Counter.code.in_(sorted(codes)))).all())
    for w in change.add_weekly:
        row = RosterPattern(counter_id=counter_ids[w.counter], officer_id=w.officer_id,
                            weekdays=sorted(w.weekdays), starts_min=w.starts_min, ends_min=w.ends_min,
                            timezone=w.tz, valid_from=w.valid_from, valid_until=w.valid_until)
        session.add(row)
        out.patterns.append(row)
    for d in change.add_deviations:
        exc = RosterException(kind=d.kind, officer_id=d.officer_id,
                              counter_id=counter_ids[d.counter] if d.counter else None, starts_at=d.starts_at,
                              ends_at=d.ends_at, note=d.note)
        session.add(exc)
        out.exceptions.append(exc)
    for pattern_id, last_day in change.end_weekly:
        session.execute(update(RosterPattern).where(RosterPattern.id == pattern_id)
                        .values(valid_until=last_day))
    if change.drop_weekly:
        session.execute(delete(RosterPattern).where(RosterPattern.id.in_(sorted(change.drop_weekly))))
    if change.drop_deviations:
        session.execute(delete(RosterException).where(RosterException.id.in_(sorted(change.drop_deviations))))
    session.flush()
    reattribute(session, impact.ratings)
    ids = {"pattern": [p.id for p in out.patterns]} if out.patterns else {}
    if out.exceptions:
        ids = {"exception_id": out.exceptions[0].id}
    audit.record(session, actor=actor, action=change.action, subject=change.subject, at=now,
                 details={**change.details, **ids, "ratings_changed": impact.count},
                 commune_id=change.commune_id)
    return out


def reattribute(session: Session, ratings: Sequence[Reattributed]) -> None:
    """The one place stored ratings change officer (one UPDATE per new officer and 500 ratings);
    the daily counts of each counter are counted again over the days the moved ratings span."""
    by_officer: dict[int | None, list[int]] = defaultdict(list)
    spans: dict[str, tuple[datetime, datetime]] = {}
    for r in ratings:
        by_officer[r.to_officer].append(r.rating_id)
        lo, hi = spans.get(r.counter, (r.pressed_at, r.pressed_at))
        spans[r.counter] = (min(lo, r.pressed_at), max(hi, r.pressed_at))
    for officer_id, ids in by_officer.items():
        for i in range(0, len(ids), _CHUNK):
            session.execute(update(Rating).where(Rating.id.in_(ids[i:i + _CHUNK]))
                            .values(officer_id=officer_id))
    for counter, (lo, hi) in sorted(spans.items()):
        rating_counts.recount(session, counter_code=counter, start=lo, end=hi + timedelta(microseconds=1))


# -- reading ---------------------------------------------------------------------------------------
def list_patterns(session: Session, *, viewer: Tenant, counter: str | None = None,
                  on: date | None = None) -> list[RosterPattern]:
    """Pattern rows (of a counter; valid on or after ``on``) of the counters ``viewer`` reaches,
    by counter, start and weekday."""
    query = (select(RosterPattern).join(Counter, Counter.id == RosterPattern.counter_id)
             .where(visible_clause(viewer, Counter.commune_id)))
    if counter is not None:
        query = query.where(Counter.code == counter)
    if on is not None:
        query = query.where(or_(RosterPattern.valid_until.is_(None), RosterPattern.valid_until >= on))
    rows = list(session.scalars(query.order_by(Counter.code, RosterPattern.valid_from, RosterPattern.id)))
    return sorted(rows, key=lambda r: (r.counter_id, min(r.weekdays or [8]), r.starts_min, r.valid_from))


def list_exceptions(session: Session, *, viewer: Tenant, counter: str | None = None, kind: str | None = None,
                    start: datetime | None = None, end: datetime | None = None) -> list[RosterException]:
    """Exceptions overlapping [start, end) of the officers ``viewer`` reaches; of a counter (with
    every leave) or of one kind."""
    query = (select(RosterException).join(Officer, Officer.id == RosterException.officer_id)
             .where(visible_clause(viewer, Officer.commune_id)))
    if counter is not None:
        row = _counter(session, counter, active=False)
        if row.commune_id is not None and getattr(viewer, "commune_id", None) not in (None, row.commune_id):
            return []  # another commune's counter: nothing of it, as for a counter without exceptions
        counter_id = row.id
        query = query.where(or_(RosterException.counter_id == counter_id, RosterException.kind == "leave"))
    if kind is not None:
        query = query.where(RosterException.kind == kind)
    if start is not None:
        query = query.where(RosterException.ends_at > start)
    if end is not None:
        query = query.where(RosterException.starts_at < end)
    return list(session.scalars(query.order_by(RosterException.starts_at, RosterException.id)))


@dataclass(frozen=True)
class Duty:
    """A stretch of time an officer (or nobody) is on duty at a counter, and why."""

    counter: str
    starts_at: datetime
    ends_at: datetime
    officer_id: int | None
    source: str
    """``pattern``, ``swap``, ``extra`` or ``leave`` (the pattern's officer is away)."""
    replaces: int | None = None
    """For a swap or a leave: the officer the weekly pattern names then."""


def duties(session: Session, *, viewer: Tenant, counters: Sequence[str], start: datetime, end: datetime,
           days_in: str | None = None) -> list[Duty]:
    """Who is on duty at each counter over [start, end): the stretches where someone is, or
    where the pattern's officer is on leave, cut where anything changes, and at each local
    midnight of ``days_in`` (a time zone) when given (a week: two queries); at most
    ``MAX_VIEW_DAYS`` at once. Counters of a commune ``viewer`` does not reach are left out."""
    if counters and getattr(viewer, "commune_id", None) is not None:
        reached = set(session.scalars(select(Counter.code).where(
            Counter.code.in_(list(counters)), visible_clause(viewer, Counter.commune_id))))
        counters = [c for c in counters if c in reached]
    if end <= start:
        return []
    if end - start > timedelta(days=MAX_VIEW_DAYS):
        raise Invalid(f"Chỉ xem được lịch trực tối đa {MAX_VIEW_DAYS} ngày một lần.")
    roster = load(session, counters=set(counters), start=start, end=end)
    cuts = {start, end}
    midnights: set[datetime] = set()
    if days_in is not None:
        day = local_day(start, days_in)
        while (midnight := _day_start(day, days_in)) < end:
            midnights.add(midnight)
            day += timedelta(days=1)
    cuts |= midnights
    for w in roster.weekly:
        zone = ZoneInfo(w.tz)
        day = start.astimezone(zone).date() - timedelta(days=1)
        while (begin := datetime.combine(day, time(), zone).astimezone(UTC)) < end:
            for minute in (w.starts_min, w.ends_min):
                cuts.add(begin + timedelta(minutes=minute))
            day += timedelta(days=1)
    for d in roster.deviations:
        cuts.update((d.starts_at, d.ends_at))
    edges = sorted(c for c in cuts if start <= c <= end)
    out: list[Duty] = []
    for counter in counters:
        for a, b in pairwise(edges):
            duty = _duty(roster, counter, a, b)
            if duty is None:
                continue
            last = out[-1] if out else None
            if last and last.ends_at == a and a not in midnights and _same(last, duty):
                out[-1] = replace(last, ends_at=b)
            else:
                out.append(duty)
    return out


def _same(one: Duty, other: Duty) -> bool:
    return (one.counter, one.officer_id, one.source, one.replaces) == \
        (other.counter, other.officer_id, other.source, other.replaces)


def _duty(roster: Roster, counter: str, a: datetime, b: datetime) -> Duty | None:
    officer = roster.on_duty(counter, a)
    planned = roster.pattern_officer(counter, a)
    cover = next((d for d in roster.deviations
                  if d.counter == counter and d.kind in COVERS and d.covers(a)), None)
    if cover is not None:
        return Duty(counter, a, b, officer, cover.kind, planned if cover.kind == "swap" else None)
    if officer is not None:
        return Duty(counter, a, b, officer, "pattern")
    if planned is not None:
        return Duty(counter, a, b, None, "leave", planned)
    return None
