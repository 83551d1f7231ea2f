"""Periods people pick, and the server-drawn SVG charts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from thanthien.hub.web import charts, periods

TZ = "Asia/Ho_Chi_Minh"


def test_a_period_is_whole_local_days_in_utc():
    p = periods.Period(date(2026, 3, 1), date(2026, 3, 31), TZ)
    assert p.start == datetime(2026, 2, 28, 17, 0, tzinfo=UTC)
    assert p.end == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    assert p.label == "01/03/2026 – 31/03/2026"


@pytest.mark.parametrize(("today", "older", "newer"), [
    (date(2026, 11, 25), date(2026, 3, 1), date(2026, 10, 1)),
    (date(2026, 4, 2), date(2025, 10, 1), date(2026, 3, 1)),
    (date(2026, 2, 10), date(2025, 3, 1), date(2025, 10, 1)),
])
def test_survey_rounds_are_the_two_latest_that_have_begun(today, older, newer):
    first, second = periods.survey_rounds(today, TZ)
    assert (first.first, second.first) == (older, newer)
    assert second.last == periods.month(newer.year, newer.month, TZ).last


def test_last_quarter_crosses_the_year():
    q = periods.quarter_of(date(2026, 2, 10), TZ, back=1)
    assert (q.first, q.last) == (date(2025, 10, 1), date(2025, 12, 31))


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2026-02-30", None, "Ngày không hợp lệ"),
    ("2026-03-10", "2026-03-01", "Ngày kết thúc phải sau ngày bắt đầu"),
    ("2020-01-01", "2026-01-01", "Khoảng thời gian quá dài"),
])
def test_a_bad_period_is_refused_with_a_vietnamese_reason(start, end, message):
    default = periods.Period(date(2026, 3, 1), date(2026, 3, 31), TZ)
    with pytest.raises(periods.PeriodError, match=message):
        periods.parse(start, end, default=default)


def test_no_dates_mean_the_default_period():
    default = periods.Period(date(2026, 3, 1), date(2026, 3, 31), TZ)
    assert periods.parse(None, "", default=default) is default


def test_a_line_chart_draws_one_point_per_sample_inside_the_plot():
    t0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    svg = str(charts.line_chart([(t0 + timedelta(minutes=i), float(i)) for i in range(5)], tz=TZ, unit="°C"))
    points = svg.split('points="')[1].split('"')[0].split()
    assert len(points) == 5
    xs = [float(p.split(",")[0]) for p in points]
    assert xs == sorted(xs) and xs[0] == charts.LEFT and xs[-1] == charts.WIDTH - charts.RIGHT
    assert ">4<" in svg and ">09:00<" in svg  # the top value and the first time, in Hà Nội


def test_a_chart_without_data_says_so():
    assert "Không có số liệu" in str(charts.line_chart([], tz=TZ))
    assert "Không có số liệu" in str(charts.bar_chart([]))


def test_bar_labels_are_escaped():
    svg = str(charts.bar_chart([("<b>", 50.0, "50")]))
    assert "&lt;b&gt;" in svg and "<b>" not in svg
