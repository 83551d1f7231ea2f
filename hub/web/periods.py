"""Periods people pick on the pages: whole local days, converted to UTC for the queries.

A period is [first day 00:00, day after the last day 00:00) in the hub's time zone. The
plan's satisfaction survey rounds run in October and March, five months apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_DAYS = 3 * 366


class PeriodError(ValueError):
    """A period that cannot be used; the message is Vietnamese and shown on the page."""


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive
    tz: str

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), ZoneInfo(self.tz)).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), ZoneInfo(self.tz)).astimezone(UTC)

    @property
    def label(self) -> str:
        if self.first == self.last:
            return self.first.strftime("%d/%m/%Y")
        return f"{self.first:%d/%m/%Y} – {self.last:%d/%m/%Y}"

    def query(self, prefix: str = "") -> dict[str, str]:
        return {f"{prefix}start": self.first.isoformat(), f"{prefix}end": self.last.isoformat()}


def today(now: datetime, tz: str) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


def parse(start: str | None, end: str | None, *, default: Period, label: str = "") -> Period:
    """The period of two ``YYYY-MM-DD`` strings; ``default`` when both are empty."""
    if not start and not end:
        return default
    where = f" ({label})" if label else ""
    try:
        first = date.fromisoformat(start) if start else default.first
        last = date.fromisoformat(end) if end else default.last
    except ValueError:
        raise PeriodError(f"Ngày không hợp lệ{where}: hãy chọn ngày theo dạng năm-tháng-ngày") from None
    if last < first:
        raise PeriodError(f"Ngày kết thúc phải sau ngày bắt đầu{where}")
    if (last - first).days > MAX_DAYS:
        raise PeriodError(f"Khoảng thời gian quá dài{where}: tối đa 3 năm")
    return Period(first, last, default.tz)


def month(year: int, month_no: int, tz: str) -> Period:
    first = date(year, month_no, 1)
    nxt = date(year + (month_no == 12), month_no % 12 + 1, 1)
    return Period(first, nxt - timedelta(days=1), tz)


def quarter_of(day: date, tz: str, back: int = 0) -> Period:
    """The quarter ``back`` quarters before the one holding ``day``."""
    index = day.year * 4 + (day.month - 1) // 3 - back
    year, q = divmod(index, 4)
    first = date(year, q * 3 + 1, 1)
    last = month(year, q * 3 + 3, tz).last
    return Period(first, last, tz)


def survey_rounds(day: date, tz: str) -> tuple[Period, Period]:
    """The two latest survey rounds that have begun (rounds run in March and October), older first."""
    if day.month >= 10:
        return month(day.year, 3, tz), month(day.year, 10, tz)
    if day.month >= 3:
        return month(day.year - 1, 10, tz), month(day.year, 3, tz)
    return month(day.year - 1, 3, tz), month(day.year - 1, 10, tz)


def presets(day: date, tz: str) -> list[tuple[str, Period]]:
    """Quick choices shown above the reports."""
    week_first = day - timedelta(days=day.weekday())
    return [
        ("Hôm nay", Period(day, day, tz)),
        ("Tuần này", Period(week_first, day, tz)),
        ("Tháng này", Period(day.replace(day=1), day, tz)),
        ("Quý này", Period(quarter_of(day, tz).first, day, tz)),
        ("Quý trước", quarter_of(day, tz, back=1)),
        ("Năm nay", Period(date(day.year, 1, 1), day, tz)),
    ]
