"""When a broadcast plays: the schedule kinds, their expansion into occurrences, Vietnamese
public holidays and quiet hours. Pure functions of the schedule and the time zone (no DB).

Schedule kinds:

``once``
    at ``start_at`` (UTC).
``daily``
    every day at ``local_time`` (HH:MM in the hub's zone).
``weekdays``
    on the chosen ISO weekdays (1 = Monday .. 7 = Sunday) at ``local_time``.
``rrule``
    an RFC 5545 RRULE (python-dateutil) whose DTSTART is ``valid_from`` (or the creation
    time) in the hub's zone, e.g. ``FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=7;BYMINUTE=0``.
``holiday``
    on the chosen Vietnamese public holidays (:data:`HOLIDAYS`: fixed-date ones on their
    anniversary, lunar ones (Tết, Giỗ Tổ) from the ``holidays`` package) at ``local_time``.
``now``
    a play-now command: one occurrence at ``start_at``.

Recurring kinds are bounded by ``valid_from`` / ``valid_until`` (UTC). Quiet hours
(default 21:30-05:30 local) refuse every non-emergency occurrence that would be playing
inside them, unless a leader granted that broadcast a quiet-hours exception
(``services/broadcasts.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

import holidays as holidays_pkg
from dateutil.rrule import rrulestr
from pydantic import Field

from thanthien.config import Section

SCHEDULE_KINDS = ("once", "daily", "weekdays", "rrule", "holiday", "now")

class Holiday(NamedTuple):
    """A holiday a greeting can be set for: its Vietnamese label, and either its fixed day
    (``month_day``, the anniversary, from ``since`` on) or its name in the ``holidays``
    package (``package_name``, English), which computes the lunar days."""

    label: str
    month_day: tuple[int, int] | None = None
    package_name: str | None = None
    since: int | None = None


HOLIDAYS: dict[str, Holiday] = {
    "new_year": Holiday("Tết Dương lịch", month_day=(1, 1)),
    "tet_eve": Holiday("Giao thừa Tết Nguyên Đán", package_name="Lunar New Year's Eve"),
    "tet_1": Holiday("Mùng một Tết Nguyên Đán", package_name="Lunar New Year"),
    "tet_2": Holiday("Mùng hai Tết Nguyên Đán", package_name="Second Day of Lunar New Year"),
    "tet_3": Holiday("Mùng ba Tết Nguyên Đán", package_name="Third Day of Lunar New Year"),
    "hung_kings": Holiday("Giỗ Tổ Hùng Vương", package_name="Hung Kings' Commemoration Day"),
    "reunification": Holiday("Ngày Giải phóng miền Nam, thống nhất đất nước", month_day=(4, 30)),
    "labour_day": Holiday("Ngày Quốc tế Lao động", month_day=(5, 1)),
    "national_day": Holiday("Quốc khánh", month_day=(9, 2)),
    # chosen by the Politburo's Resolution 80-NQ/TW (January 2026); `holidays` lists it from 2026
    "cultural_day": Holiday("Ngày Văn hóa Việt Nam", month_day=(11, 24), since=2026),
}
"""The holidays a greeting can be set for. A greeting plays on the day itself: a fixed-date
holiday on its anniversary, whatever days off the ``holidays`` package lists around it
(Quốc khánh is two days off, 09-01 + 09-02 in some years and 09-02 + 09-03 in others; days off
in lieu (nghỉ bù) and swapped working days are no greeting days); a lunar day (Giao thừa, mùng
1–3 Tết, Giỗ Tổ 10/3) on the date the package computes for it, by its exact name (never its
``(observed)`` day). Giao thừa is the last day of the lunar year: a greeting at the moment of
giao thừa is Mùng một Tết at 00:00."""


WEEKDAY_LABELS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class BroadcastSettings(Section):
    """The ``[broadcasts]`` table of the hub config."""

    plan_days: int = Field(3, ge=1, le=31, description="Each speaker's plan covers this many days ahead.")
    plan_republish_s: float = Field(
        600.0,
        ge=1,
        le=86400,
        description="Plans are recomputed this often (and at once after every change); a plan whose "
        "items changed gets the next revision.",
    )
    plan_check_s: float = Field(
        60.0,
        ge=1,
        le=86400,
        description="Plans are recomputed this often and published when their items changed "
        "(registry edits, the horizon moving on).",
    )
    plan_keep_past_s: float = Field(
        900.0,
        ge=0,
        le=86400,
        description="An occurrence stays in the plan this long after its start, so a node that is "
        "about to play it late does not lose it.",
    )
    quiet_start: str = Field("21:30", pattern=_HHMM.pattern, description="Quiet hours begin (local).")
    quiet_end: str = Field("05:30", pattern=_HHMM.pattern, description="Quiet hours end (local).")
    report_grace_s: float = Field(
        120.0,
        ge=1,
        le=86400,
        description="After an occurrence's end plus this, nodes that did not report it are counted "
        "missed and the broadcast_missed alarm is raised.",
    )
    play_now_lead_s: float = Field(
        3.0,
        ge=0,
        le=60,
        description="Play-now commands start this long after they are sent, so that every node "
        "starts together (0: each at once).",
    )
    command_ttl_s: float = Field(
        120.0, ge=5, le=86400, description="A play-now command a node receives later than this is void."
    )
    rrule_check_days: int = Field(
        366, ge=1, le=3660, description="Recurring schedules are checked against quiet hours this far ahead."
    )
    allow_self_approval: bool = Field(
        False,
        description="Four eyes: off, whoever drafted or edited a broadcast cannot approve it and another "
        "leader or admin must. On (a commune with a single leader): its author may approve it; the audit "
        "log still names author and approver.",
    )


@dataclass(frozen=True)
class Schedule:
    kind: str
    start_at: datetime | None = None
    local_time: str | None = None
    weekdays: tuple[int, ...] = ()
    rrule: str | None = None
    holidays: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_until: datetime | None = None


def parse_hhmm(text: str) -> time:
    if not _HHMM.match(text or ""):
        raise ValueError(f"giờ phải có dạng HH:MM (00:00–23:59), nhận được {text!r}")
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@lru_cache(maxsize=256)
def holiday_dates(key: str, year: int) -> date | None:
    """The day of holiday ``key`` in ``year`` (``None`` in a year it is not kept)."""
    h = HOLIDAYS[key]
    if h.since is not None and year < h.since:
        return None
    if h.month_day is not None:
        return date(year, *h.month_day)
    found = sorted(
        d
        for d, n in holidays_pkg.country_holidays("VN", years=year, language="en_US").items()
        if h.package_name in n.split("; ")
    )
    return found[0] if found else None


def occurrences(
    s: Schedule, *, start: datetime, end: datetime, tz: ZoneInfo, limit: int = 5000
) -> list[datetime]:
    """Start times (UTC) of the schedule in ``[start, end)``, sorted."""
    lo = max(start, s.valid_from) if s.valid_from else start
    hi = min(end, s.valid_until) if s.valid_until else end
    out: list[datetime] = []
    for at in _generate(s, lo, hi, tz):
        if at >= hi:
            break
        if at >= lo:
            out.append(at)
            if len(out) >= limit:
                break
    return out


def _generate(s: Schedule, lo: datetime, hi: datetime, tz: ZoneInfo) -> Iterator[datetime]:
    if s.kind in ("once", "now"):
        if s.start_at is not None:
            yield s.start_at.astimezone(UTC)
        return
    if s.kind == "rrule":
        yield from _rrule(s, lo, hi, tz)
        return
    at_time = parse_hhmm(s.local_time or "")
    if s.kind == "holiday":
        first, last = lo.astimezone(tz).year, hi.astimezone(tz).year
        days = sorted(
            d for y in range(first, last + 1) for k in s.holidays if (d := holiday_dates(k, y)) is not None
        )
        for d in days:
            yield datetime.combine(d, at_time, tz).astimezone(UTC)
        return
    day = lo.astimezone(tz).date()
    last_day = hi.astimezone(tz).date()
    while day <= last_day:
        if s.kind == "daily" or day.isoweekday() in s.weekdays:
            yield datetime.combine(day, at_time, tz).astimezone(UTC)
        day += timedelta(days=1)


def _rrule(s: Schedule, lo: datetime, hi: datetime, tz: ZoneInfo) -> Iterator[datetime]:
    rule = compile_rrule(s.rrule or "", s.valid_from or lo, tz)
    # dateutil compares naive local times: walk local, convert each to UTC
    cursor = lo.astimezone(tz).replace(tzinfo=None) - timedelta(seconds=1)
    end_local = hi.astimezone(tz).replace(tzinfo=None)
    while True:
        nxt = rule.after(cursor)
        if nxt is None or nxt > end_local + timedelta(days=1):
            return
        yield nxt.replace(tzinfo=tz).astimezone(UTC)
        cursor = nxt


def compile_rrule(text: str, dtstart: datetime, tz: ZoneInfo):  # type: ignore[no-untyped-def]
    """A dateutil rule from an RRULE line (``RRULE:`` prefix optional), or ValueError."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body or "\n" in body or "DTSTART" in body.upper():
        raise ValueError("quy tắc lặp RRULE không hợp lệ (chỉ một dòng RRULE, không có DTSTART)")
    start_local = dtstart.astimezone(tz).replace(tzinfo=None, microsecond=0)
    try:
        return rrulestr(body, dtstart=start_local)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"quy tắc lặp RRULE không hợp lệ: {exc}") from None


def in_quiet_hours(
    at: datetime, duration_s: float, *, tz: ZoneInfo, quiet_start: str, quiet_end: str
) -> bool:
    """True when any part of ``[at, at + duration)`` falls in the daily quiet hours."""
    qs, qe = parse_hhmm(quiet_start), parse_hhmm(quiet_end)
    local = at.astimezone(tz)
    end = local + timedelta(seconds=max(duration_s, 0))
    day = local.date() - timedelta(days=1)
    while day <= end.date():
        q_from = datetime.combine(day, qs, tz)
        q_to = datetime.combine(day if qe > qs else day + timedelta(days=1), qe, tz)
        if local < q_to and end > q_from:
            return True
        day += timedelta(days=1)
    return False


def describe(s: Schedule, tz: ZoneInfo) -> str:
    """The schedule in Vietnamese, for lists and messages."""
    if s.kind in ("once", "now") and s.start_at is not None:
        return f"Một lần lúc {s.start_at.astimezone(tz):%H:%M %d/%m/%Y}"
    if s.kind == "daily":
        return f"Hằng ngày lúc {s.local_time}"
    if s.kind == "weekdays":
        days = ", ".join(WEEKDAY_LABELS[d - 1] for d in sorted(s.weekdays))
        return f"{days} lúc {s.local_time}"
    if s.kind == "holiday":
        names = ", ".join(HOLIDAYS[k].label for k in s.holidays if k in HOLIDAYS)
        return f"Ngày lễ ({names}) lúc {s.local_time}"
    return f"Lặp theo quy tắc {s.rrule}"
