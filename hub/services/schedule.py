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
    on the chosen Vietnamese public holidays (:data:`HOLIDAYS`, from the ``holidays``
    package, lunar Tết included) at ``local_time``.
``now``
    a play-now command: one occurrence at ``start_at``.

Recurring kinds are bounded by ``valid_from`` / ``valid_until`` (UTC). Quiet hours
(default 21:30-05:30 local) refuse every non-emergency occurrence that would be playing
inside them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_pkg
from dateutil.rrule import rrulestr
from pydantic import Field

from thanthien.config import Section

SCHEDULE_KINDS = ("once", "daily", "weekdays", "rrule", "holiday", "now")

HOLIDAYS: dict[str, tuple[str, str]] = {
    # key -> (English name in the holidays package, Vietnamese label)
    "new_year": ("New Year's Day", "Tết Dương lịch"),
    "tet_eve": ("Lunar New Year's Eve", "Giao thừa Tết Nguyên Đán"),
    "tet_1": ("Lunar New Year", "Mùng một Tết Nguyên Đán"),
    "tet_2": ("Second Day of Lunar New Year", "Mùng hai Tết Nguyên Đán"),
    "tet_3": ("Third Day of Lunar New Year", "Mùng ba Tết Nguyên Đán"),
    "hung_kings": ("Hung Kings' Commemoration Day", "Giỗ Tổ Hùng Vương"),
    "reunification": ("Liberation Day/Reunification Day", "Ngày Giải phóng miền Nam, thống nhất đất nước"),
    "labour_day": ("International Labor Day", "Ngày Quốc tế Lao động"),
    "national_day": ("National Day", "Quốc khánh"),
    "cultural_day": ("Vietnam Cultural Day", "Ngày Văn hóa Việt Nam"),
}
"""The holidays a greeting can be set for. A holiday that spans two days (Quốc khánh) means
its first day; substitute days off (nghỉ bù) are not greeting days."""

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


@lru_cache(maxsize=64)
def holiday_dates(key: str, year: int) -> date | None:
    """The (first) date of holiday ``key`` in ``year``, from the ``holidays`` package."""
    name = HOLIDAYS[key][0]
    found = sorted(
        d
        for d, n in holidays_pkg.country_holidays("VN", years=year, language="en_US").items()
        if name in n.split("; ")
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
        names = ", ".join(HOLIDAYS[k][1] for k in s.holidays if k in HOLIDAYS)
        return f"Ngày lễ ({names}) lúc {s.local_time}"
    return f"Lặp theo quy tắc {s.rrule}"
