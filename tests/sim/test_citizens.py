"""The citizen model: office hours, holidays, score mixes, repeats and bouncing contacts."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import pytest

from thanthien.sim.citizens import LOCAL_TZ, CitizenModel, ScoreMix, press_pattern

UNHAPPY = ScoreMix(0.1, 0.2, 0.3, 0.4)


def model(**kw) -> CitizenModel:
    return CitizenModel(counters={"quay-1": ScoreMix(), "quay-2": UNHAPPY}, **kw)


def _local(*args) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


def test_same_seed_gives_the_same_visits():
    start, end = _local(2026, 3, 2), _local(2026, 3, 9)
    assert list(model(seed=7).visits(start, end)) == list(model(seed=7).visits(start, end))
    assert list(model(seed=7).visits(start, end)) != list(model(seed=8).visits(start, end))


def test_visits_fall_only_in_office_hours_on_working_days():
    for visit in model(visits_per_hour=20).visits(_local(2026, 3, 1), _local(2026, 3, 15)):
        local = visit.at.astimezone(LOCAL_TZ)
        assert local.weekday() < 5
        minutes = local.hour * 60 + local.minute
        assert 450 <= minutes < 690 or 810 <= minutes < 1020, local


def test_no_visits_on_lunar_new_year():
    # Tết Bính Ngọ: 17 February 2026 is the first day of the lunar year.
    visits = list(model(visits_per_hour=30).visits(_local(2026, 2, 17), _local(2026, 2, 18)))
    assert visits == []


def test_rate_matches_visits_per_hour_over_a_month():
    m = CitizenModel(counters={"quay-1": ScoreMix()}, visits_per_hour=10)
    visits = list(m.visits(_local(2026, 3, 2), _local(2026, 3, 28)))  # 20 working days
    per_hour = len(visits) / (20 * 7.5)
    assert 7 <= per_hour <= 13


def test_score_mix_shows_in_the_visits():
    visits = list(model(visits_per_hour=30).visits(_local(2026, 3, 2), _local(2026, 3, 28)))
    unhappy = Counter(v.score for v in visits if v.counter == "quay-2")
    happy = Counter(v.score for v in visits if v.counter == "quay-1")
    assert unhappy[1] / sum(unhappy.values()) == pytest.approx(0.4, abs=0.05)
    assert happy[4] / sum(happy.values()) == pytest.approx(0.55, abs=0.05)


def test_visits_are_in_time_order_and_utc():
    visits = list(model().visits(_local(2026, 3, 2), _local(2026, 3, 7)))
    assert visits == sorted(visits, key=lambda v: v.at)
    assert all(v.at.tzinfo == UTC for v in visits)


def test_score_mix_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        ScoreMix(0.5, 0.5, 0.5, 0.5)


def test_bouncy_press_chatters_then_holds_then_releases():
    steps = press_pattern(random.Random(3), bouncy=True, hold_s=0.2)
    assert steps[-1] == (False, 0.0)
    assert (True, 0.2) in steps
    assert len(steps) > 4
    assert all(d < 0.005 for level, d in steps if d not in (0.2, 0.0))


def test_clean_press_is_down_hold_up():
    assert press_pattern(random.Random(3), bouncy=False, hold_s=0.1) == [(True, 0.1), (False, 0.0)]
