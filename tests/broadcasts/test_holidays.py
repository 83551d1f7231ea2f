"""Holiday greetings fall on the right day, 2025–2035: known dates written out, not the
``holidays`` package checked against itself.

Sources of the dates below:

* Fixed-date holidays: Bộ luật Lao động 2019, Art. 112 (Tết Dương lịch 1/1, Chiến thắng 30/4,
  Quốc tế Lao động 1/5, Quốc khánh 2/9 with one adjacent day off); Ngày Văn hóa Việt Nam 24/11
  chosen by the Politburo's Resolution 80-NQ/TW (January 2026), a day off from 2026. A greeting
  belongs on the anniversary, whatever days off surround it.
* Lunar days: the Vietnamese lunar calendar (UTC+7), computed with Hồ Ngọc Đức's published
  algorithm (amlich) outside this project; Tết Ất Tỵ on 29/01/2025 and Tết Bính Ngọ on 17/02/2026
  as in the government's Tết holiday notices. Giao thừa is the day before mùng một, Giỗ Tổ Hùng
  Vương is 10/3 âm lịch. In 2030 Tết is on 2 February in Vietnam and 3 February in China (the
  new moon falls at 23:07 in Hà Nội, after midnight in Beijing).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from thanthien.hub.services.schedule import HOLIDAYS, Schedule, holiday_dates, occurrences

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
YEARS = range(2025, 2036)

TET = {  # mùng một Tết Nguyên Đán
    2025: date(2025, 1, 29), 2026: date(2026, 2, 17), 2027: date(2027, 2, 6), 2028: date(2028, 1, 26),
    2029: date(2029, 2, 13), 2030: date(2030, 2, 2), 2031: date(2031, 1, 23), 2032: date(2032, 2, 11),
    2033: date(2033, 1, 31), 2034: date(2034, 2, 19), 2035: date(2035, 2, 8),
}
GIAO_THUA = {  # the last day of the lunar year
    2025: date(2025, 1, 28), 2026: date(2026, 2, 16), 2027: date(2027, 2, 5), 2028: date(2028, 1, 25),
    2029: date(2029, 2, 12), 2030: date(2030, 2, 1), 2031: date(2031, 1, 22), 2032: date(2032, 2, 10),
    2033: date(2033, 1, 30), 2034: date(2034, 2, 18), 2035: date(2035, 2, 7),
}
MUNG_HAI = {
    2025: date(2025, 1, 30), 2026: date(2026, 2, 18), 2027: date(2027, 2, 7), 2028: date(2028, 1, 27),
    2029: date(2029, 2, 14), 2030: date(2030, 2, 3), 2031: date(2031, 1, 24), 2032: date(2032, 2, 12),
    2033: date(2033, 2, 1), 2034: date(2034, 2, 20), 2035: date(2035, 2, 9),
}
MUNG_BA = {
    2025: date(2025, 1, 31), 2026: date(2026, 2, 19), 2027: date(2027, 2, 8), 2028: date(2028, 1, 28),
    2029: date(2029, 2, 15), 2030: date(2030, 2, 4), 2031: date(2031, 1, 25), 2032: date(2032, 2, 13),
    2033: date(2033, 2, 2), 2034: date(2034, 2, 21), 2035: date(2035, 2, 10),
}
GIO_TO = {  # 10/3 âm lịch
    2025: date(2025, 4, 7), 2026: date(2026, 4, 26), 2027: date(2027, 4, 16), 2028: date(2028, 4, 4),
    2029: date(2029, 4, 23), 2030: date(2030, 4, 12), 2031: date(2031, 4, 1), 2032: date(2032, 4, 19),
    2033: date(2033, 4, 9), 2034: date(2034, 4, 28), 2035: date(2035, 4, 17),
}
EXPECTED: dict[str, dict[int, date | None]] = {
    "new_year": {y: date(y, 1, 1) for y in YEARS},
    "tet_eve": GIAO_THUA,
    "tet_1": TET,
    "tet_2": MUNG_HAI,
    "tet_3": MUNG_BA,
    "hung_kings": GIO_TO,
    "reunification": {y: date(y, 4, 30) for y in YEARS},
    "labour_day": {y: date(y, 5, 1) for y in YEARS},
    "national_day": {y: date(y, 9, 2) for y in YEARS},
    "cultural_day": {y: date(y, 11, 24) if y >= 2026 else None for y in YEARS},
}

# Days off the pinned package lists that are no greeting days: the other day of Quốc khánh, days
# off in lieu (nghỉ bù, "observed") and swapped working days.
DAYS_OFF_NOT_GREETING = [
    date(2025, 9, 1), date(2026, 9, 1), date(2027, 9, 3), date(2028, 9, 1), date(2028, 9, 4),
    date(2029, 9, 3), date(2029, 11, 26), date(2026, 4, 27), date(2033, 4, 11), date(2028, 1, 3),
    date(2027, 5, 3), date(2028, 5, 2), date(2025, 5, 2), date(2026, 8, 31), date(2025, 1, 27),
]


def between(s: Schedule, first: int, last: int) -> list[datetime]:
    """Occurrences from 1 January of ``first`` to 31 December of ``last``."""
    start, end = datetime(first, 1, 1, tzinfo=UTC), datetime(last + 1, 1, 1, tzinfo=UTC)
    return occurrences(s, start=start, end=end, tz=TZ)


def test_the_expected_table_covers_every_holiday_a_greeting_can_be_set_for():
    assert sorted(EXPECTED) == sorted(HOLIDAYS)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_holiday_falls_on_its_known_day_every_year_2025_to_2035(key):
    assert {y: holiday_dates(key, y) for y in YEARS} == EXPECTED[key]


@pytest.mark.parametrize("year", [2025, 2026, 2027, 2028])
def test_national_day_greeting_plays_on_2_september_whichever_day_off_is_added(year):
    s = Schedule("holiday", local_time="07:00", holidays=("national_day",))
    got = between(s, year, year)
    assert [a.astimezone(TZ).replace(tzinfo=None) for a in got] == [datetime(year, 9, 2, 7, 0)]


def test_no_greeting_plays_on_a_day_off_in_lieu_or_the_second_day_of_quoc_khanh():
    s = Schedule("holiday", local_time="07:00", holidays=tuple(HOLIDAYS))
    days = [a.astimezone(TZ).date() for a in between(s, 2025, 2035)]
    assert not set(days) & set(DAYS_OFF_NOT_GREETING)
    assert days == sorted(d for table in EXPECTED.values() for d in table.values() if d is not None)


def test_ngay_van_hoa_has_no_greeting_before_it_was_chosen_in_2026():
    s = Schedule("holiday", local_time="08:00", holidays=("cultural_day",))
    assert [a.astimezone(TZ).date() for a in between(s, 2025, 2026)] == [date(2026, 11, 24)]


def test_tet_2030_follows_the_vietnamese_calendar_not_the_chinese_one():
    assert holiday_dates("tet_1", 2030) == date(2030, 2, 2)  # China: 3 February 2030


def test_a_greeting_at_the_moment_of_giao_thua_is_mung_mot_at_midnight_local_time():
    s = Schedule("holiday", local_time="00:00", holidays=("tet_1",))
    assert between(s, 2026, 2026) == [datetime(2026, 2, 16, 17, 0, tzinfo=UTC)]  # 00:00 17/02/2026, Hà Nội
