"""Schedules without a database: holidays (lunar Tết), weekdays, RRULE, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import holidays

from thanthien.hub.services.schedule import Schedule, in_quiet_hours, occurrences

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local(at: datetime) -> datetime:
    return at.astimezone(TZ)


def test_greeting_on_the_first_day_of_tet_falls_on_2027_02_06_and_2028_01_26_at_0630():
    s = Schedule("holiday", local_time="06:30", holidays=("tet_1",))
    got = occurrences(
        s, start=datetime(2026, 12, 1, tzinfo=UTC), end=datetime(2028, 12, 31, tzinfo=UTC), tz=TZ
    )
    assert [local(a).replace(tzinfo=None) for a in got] == [
        datetime(2027, 2, 6, 6, 30),
        datetime(2028, 1, 26, 6, 30),
    ]
    assert got[0] == datetime(2027, 2, 5, 23, 30, tzinfo=UTC)  # stored in UTC
    vn = holidays.country_holidays("VN", years=[2027, 2028])
    assert all(local(a).date() in vn for a in got)


def test_national_day_greeting_is_on_2_september_only_not_on_the_day_off_after_it():
    s = Schedule("holiday", local_time="07:00", holidays=("national_day",))
    got = occurrences(s, start=datetime(2027, 1, 1, tzinfo=UTC), end=datetime(2028, 1, 1, tzinfo=UTC), tz=TZ)
    assert [local(a).date().isoformat() for a in got] == ["2027-09-02"]


def test_weekday_schedule_plays_only_on_chosen_days_in_local_time():
    s = Schedule("weekdays", local_time="06:00", weekdays=(1, 5))  # Monday, Friday
    got = occurrences(s, start=datetime(2026, 3, 1, tzinfo=UTC), end=datetime(2026, 3, 15, tzinfo=UTC), tz=TZ)
    assert [(local(a).isoweekday(), local(a).strftime("%H:%M")) for a in got] == [
        (1, "06:00"),
        (5, "06:00"),
    ] * 2


def test_rrule_expands_in_local_time_from_its_start():
    s = Schedule(
        "rrule",
        rrule="FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=7;BYMINUTE=15;COUNT=3",
        valid_from=datetime(2026, 3, 1, tzinfo=UTC),
    )
    got = occurrences(s, start=datetime(2026, 3, 1, tzinfo=UTC), end=datetime(2026, 6, 1, tzinfo=UTC), tz=TZ)
    assert [local(a).strftime("%a %d %H:%M") for a in got] == ["Mon 02 07:15", "Thu 05 07:15", "Mon 09 07:15"]


def test_quiet_hours_span_midnight_and_count_the_whole_playback():
    def quiet(h: int, m: int, duration: float = 60) -> bool:
        at = datetime(2026, 3, 2, h, m, tzinfo=TZ)
        return in_quiet_hours(at, duration, tz=TZ, quiet_start="21:30", quiet_end="05:30")

    assert quiet(22, 0) and quiet(3, 0) and quiet(5, 29)
    assert not quiet(5, 30) and not quiet(12, 0) and not quiet(21, 29)
    assert quiet(21, 29, duration=120)  # starts before, still playing at 21:30
