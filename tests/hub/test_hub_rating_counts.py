"""Rating counts kept at ingest (issue 16 item 2), per local day and per local month: counted as
ratings are stored, moved when the roster re-attributes ratings, rebuilt by the migration, a
restore and the command; summaries read them and equal a raw GROUP BY over the ratings for any
period and grouping (hypothesis), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import logging
import tarfile
import uuid
from collections import Counter as Tally
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text, update

from hub.conftest import _clean
from hub.hub_helpers import rating, rating_msg
from thanthien.hub.db.migrate import upgrade
from thanthien.hub.db.models import Counter, Officer, Rating, RatingCount, RatingMonthCount
from thanthien.hub.db.session import Database
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import rating_counts, ratings, registry, reports, roster
from thanthien.hub.services.backup import create_backup, restore_backup
from thanthien.hub.services.errors import Conflict
from thanthien.hub.services.ratings import RatingFilter
from thanthien.hub.settings import HubSection, RegistrySection
from thanthien.protocol.payloads import RatingEvent

TZ = "Asia/Ho_Chi_Minh"
ZONE = ZoneInfo(TZ)
MIDNIGHT = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # 00:00 on Monday 2 March 2026 in Hà Nội
DAY = timedelta(days=1)
COUNTERS = ("quay-1", "quay-2", "quay-3")


def setup_registry(db: Database) -> list[int]:
    """Three counters and three officers; the officers' ids."""
    with db.session() as s:
        s.add_all(Counter(code=code, name=f"Quầy {code[-1]}", commune_id=1) for code in COUNTERS)
        officers = [Officer(code=f"cb-{i}", full_name=f"Cán bộ {i}", title="", commune_id=1)
                    for i in range(1, 4)]
        s.add_all(officers)
        s.flush()
        return [o.id for o in officers]


def press(counter: str = "quay-1", score: int = 4, at: datetime = MIDNIGHT, seq: int = 1,
          node: str = "node-a") -> RatingEvent:
    return RatingEvent(event_id=uuid.uuid4(), node=node, seq=seq, box="box-1", counter=counter, score=score,
                       pressed_at=at)


def store(db: Database, events: list[RatingEvent]) -> None:
    with db.session() as s:
        ratings.store_ratings(s, events=events, now=MIDNIGHT + 60 * DAY)


def counts(db: Database) -> dict[tuple[date, str, int], tuple[int, int, int, int]]:
    with db.session(write=False) as s:
        return {(rating_counts.as_date(r.day), r.counter_code, r.officer_id): (r.n1, r.n2, r.n3, r.n4)
                for r in s.scalars(select(RatingCount))}


def months(db: Database) -> dict[tuple[date, str, int], tuple[int, int, int, int]]:
    with db.session(write=False) as s:
        return {(rating_counts.as_date(r.month), r.counter_code, r.officer_id): (r.n1, r.n2, r.n3, r.n4)
                for r in s.scalars(select(RatingMonthCount))}


def summary(db: Database, group_by: list[reports.Dimension], flt: RatingFilter | None = None,
            tz: str = TZ) -> list[reports.SummaryRow]:
    with db.session(write=False) as s:
        return reports.summarize(s, viewer=SYSTEM, group_by=group_by, flt=flt or RatingFilter(), tz=tz)


def raw(db: Database, group_by: list[reports.Dimension], flt: RatingFilter | None = None,
        tz: str = TZ) -> list[reports.SummaryRow]:
    with db.session(write=False) as s:
        return reports.summarize_raw(s, viewer=SYSTEM, group_by=group_by, flt=flt or RatingFilter(), tz=tz)


def tamper(db: Database, day: date, counter: str, officer: int, extra_n4: int, *,
           monthly: bool = False) -> None:
    """Add presses to one count row only (to see which days a summary reads from the counts)."""
    t = RatingMonthCount if monthly else RatingCount
    when = RatingMonthCount.month if monthly else RatingCount.day
    with db.session() as s:
        s.execute(update(t).where(when == day, t.counter_code == counter, t.officer_id == officer)
                  .values(n4=t.n4 + extra_n4))


def on_duty(db: Database, *, officer_id: int, counter: str, start: datetime,
            end: datetime) -> Callable[[], None]:
    """Put an officer on duty at a counter for [start, end) with a roster exception (a one-off
    day); returns how to take them off again."""
    with db.session() as s:
        change = roster.new_exception(s, actor=SYSTEM, kind="extra", officer_id=officer_id, counter=counter,
                                      starts_at=start, ends_at=end)
        made = roster.apply(s, change, actor=SYSTEM)
        exception_id = made.exceptions[0].id

    def off_roster() -> None:
        with db.session() as s:
            roster.apply(s, roster.drop_exception(s, actor=SYSTEM, exception_id=exception_id), actor=SYSTEM)
    return off_roster


# -- counted as ratings are stored -----------------------------------------------------------
def test_stored_ratings_are_counted_by_local_day_counter_officer_and_level(db):
    officers = setup_registry(db)
    on_duty(db, officer_id=officers[0], counter="quay-1", start=MIDNIGHT, end=MIDNIGHT + DAY)
    store(db, [press("quay-1", 4, MIDNIGHT + timedelta(hours=2), seq=1),
               press("quay-1", 4, MIDNIGHT + timedelta(hours=3), seq=2),
               press("quay-1", 1, MIDNIGHT + timedelta(hours=4), seq=3),
               press("quay-2", 3, MIDNIGHT + timedelta(hours=4), seq=4)])
    assert counts(db) == {(date(2026, 3, 2), "quay-1", officers[0]): (1, 0, 0, 2),
                          (date(2026, 3, 2), "quay-2", 0): (0, 0, 1, 0)}


def test_stored_ratings_are_counted_per_local_month_too(db):
    setup_registry(db)
    store(db, [press(score=4, at=MIDNIGHT, seq=1), press(score=2, at=MIDNIGHT + 20 * DAY, seq=2),
               press(score=1, at=MIDNIGHT + 30 * DAY, seq=3)])  # 2 and 22 March, 1 April
    assert months(db) == {(date(2026, 3, 1), "quay-1", 0): (0, 1, 0, 1),
                          (date(2026, 4, 1), "quay-1", 0): (1, 0, 0, 0)}


def test_a_press_at_local_midnight_counts_on_the_new_local_day(db):
    setup_registry(db)
    store(db, [press(at=MIDNIGHT - timedelta(microseconds=1), seq=1), press(at=MIDNIGHT, seq=2)])
    assert counts(db) == {(date(2026, 3, 1), "quay-1", 0): (0, 0, 0, 1),
                          (date(2026, 3, 2), "quay-1", 0): (0, 0, 0, 1)}


def test_a_rating_stored_again_is_not_counted_again(db):
    setup_registry(db)
    events = [press(seq=1), press(score=2, seq=2)]
    store(db, events)
    store(db, events + events)
    assert counts(db) == {(date(2026, 3, 2), "quay-1", 0): (0, 1, 0, 1)}


def test_counts_roll_back_with_the_ratings(db):
    setup_registry(db)
    with db.session() as s:
        ratings.store_ratings(s, events=[press()], now=MIDNIGHT)
        s.rollback()
    assert counts(db) == {}


def test_ratings_stored_in_a_savepoint_that_rolls_back_are_not_counted(db):
    setup_registry(db)
    with db.session() as s:
        ratings.store_ratings(s, events=[press(score=4, seq=1)], now=MIDNIGHT)
        savepoint = s.begin_nested()
        ratings.store_ratings(s, events=[press(score=1, seq=2)], now=MIDNIGHT)
        savepoint.rollback()
    assert counts(db) == {(date(2026, 3, 2), "quay-1", 0): (0, 0, 0, 1)}


def test_a_summary_sees_ratings_stored_earlier_in_the_same_unit_of_work(db):
    setup_registry(db)
    with db.session() as s:
        ratings.store_ratings(s, events=[press(score=3)], now=MIDNIGHT)
        rows = reports.summarize(s, viewer=SYSTEM, group_by=["counter"], flt=RatingFilter(), tz=TZ)
    assert [(r.key["counter"], r.counts[3]) for r in rows] == [("quay-1", 1)]


def test_ratings_ingested_by_the_worker_are_counted_when_it_commits(ctx):
    with ctx.db.session() as s:
        registry.apply_declarations(s, registry=RegistrySection(
            counters=[{"code": "quay-1", "name": "Quầy 1"}],
            nodes=[{"id": "node-a",
                    "devices": [{"code": "box-1", "kind": "rating_box", "counter": "quay-1"}]}]))
    IngestWorker(ctx).process([rating_msg(rating(seq=i, score=1 + i % 4, pressed_at=MIDNIGHT), ctx.clock())
                               for i in range(1, 9)])
    assert counts(ctx.db) == {(date(2026, 3, 2), "quay-1", 0): (2, 2, 2, 2)}


# -- kept right when ratings change officer ------------------------------------------------------
def test_putting_an_officer_on_duty_moves_the_counts_of_their_window(db):
    officers = setup_registry(db)
    store(db, [press(at=MIDNIGHT + timedelta(hours=h), seq=h) for h in (1, 2, 3, 4)])
    on_duty(db, officer_id=officers[1], counter="quay-1", start=MIDNIGHT + timedelta(hours=2),
            end=MIDNIGHT + timedelta(hours=4))
    assert counts(db) == {(date(2026, 3, 2), "quay-1", 0): (0, 0, 0, 2),
                          (date(2026, 3, 2), "quay-1", officers[1]): (0, 0, 0, 2)}


def test_putting_an_officer_on_duty_moves_the_monthly_counts_of_their_window(db):
    officers = setup_registry(db)
    store(db, [press(at=MIDNIGHT + timedelta(hours=1), seq=1), press(at=MIDNIGHT + timedelta(hours=2), seq=2),
               press(at=MIDNIGHT + 40 * DAY, seq=3)])
    on_duty(db, officer_id=officers[1], counter="quay-1", start=MIDNIGHT, end=MIDNIGHT + timedelta(hours=2))
    assert months(db) == {(date(2026, 3, 1), "quay-1", 0): (0, 0, 0, 1),
                          (date(2026, 3, 1), "quay-1", officers[1]): (0, 0, 0, 1),
                          (date(2026, 4, 1), "quay-1", 0): (0, 0, 0, 1)}


def test_taking_an_officer_off_duty_gives_their_counts_to_nobody(db):
    officers = setup_registry(db)
    off = on_duty(db, officer_id=officers[0], counter="quay-2", start=MIDNIGHT - DAY, end=MIDNIGHT + DAY)
    store(db, [press("quay-2", 2, MIDNIGHT - timedelta(hours=1), seq=1), press("quay-2", 2, MIDNIGHT, seq=2)])
    off()
    assert counts(db) == {(date(2026, 3, 1), "quay-2", 0): (0, 1, 0, 0),
                          (date(2026, 3, 2), "quay-2", 0): (0, 1, 0, 0)}


def test_recount_counts_the_days_of_a_counter_again_after_its_ratings_change_officer(db):
    officers = setup_registry(db)
    store(db, [press(at=MIDNIGHT + timedelta(hours=1), seq=1), press(at=MIDNIGHT + DAY, seq=2),
               press("quay-2", at=MIDNIGHT + timedelta(hours=1), seq=3)])
    with db.session() as s:
        s.execute(update(Rating).where(Rating.counter_code == "quay-1").values(officer_id=officers[2]))
        rating_counts.recount(s, counter_code="quay-1", start=MIDNIGHT, end=MIDNIGHT + 2 * DAY)
    assert counts(db) == {(date(2026, 3, 2), "quay-1", officers[2]): (0, 0, 0, 1),
                          (date(2026, 3, 3), "quay-1", officers[2]): (0, 0, 0, 1),
                          (date(2026, 3, 2), "quay-2", 0): (0, 0, 0, 1)}


def test_forgetting_an_officer_merges_their_counts_into_nobodys(db):
    officers = setup_registry(db)
    store(db, [press(score=1, seq=1)])
    on_duty(db, officer_id=officers[0], counter="quay-1", start=MIDNIGHT + timedelta(hours=1),
            end=MIDNIGHT + timedelta(hours=2))
    store(db, [press(score=4, at=MIDNIGHT + timedelta(hours=1), seq=2)])
    with db.session() as s:
        rating_counts.forget_officer(s, officer_id=officers[0])
    assert (counts(db), months(db)) == ({(date(2026, 3, 2), "quay-1", 0): (1, 0, 0, 1)},
                                        {(date(2026, 3, 1), "quay-1", 0): (1, 0, 0, 1)})


# -- the summary reads the counts --------------------------------------------------------------
def test_whole_local_days_are_read_from_the_counts(db):
    setup_registry(db)
    store(db, [press(score=4, at=MIDNIGHT + timedelta(hours=9))])
    tamper(db, date(2026, 3, 2), "quay-1", 0, extra_n4=5)
    whole_day = RatingFilter(start=MIDNIGHT, end=MIDNIGHT + DAY)
    assert [r.counts[4] for r in summary(db, ["day"], whole_day)] == [6]
    assert [r.counts[4] for r in raw(db, ["day"], whole_day)] == [1]


def test_whole_months_are_read_from_the_monthly_counts_when_no_day_or_week_is_asked(db):
    setup_registry(db)
    store(db, [press(score=4, at=MIDNIGHT + timedelta(hours=9))])
    tamper(db, date(2026, 3, 1), "quay-1", 0, extra_n4=5, monthly=True)
    march = RatingFilter(start=MIDNIGHT - DAY, end=MIDNIGHT + 30 * DAY)  # 1 March .. 31 March, local
    assert [r.counts[4] for r in summary(db, ["month"], march)] == [6]
    assert [r.counts[4] for r in summary(db, ["week"], march)] == [1]


def test_split_months_reads_whole_months_monthly_and_the_days_around_them_daily():
    d = date
    assert reports.split_months(["month"], d(2026, 3, 2), d(2026, 6, 10)) == [
        (False, d(2026, 3, 2), d(2026, 4, 1)), (True, d(2026, 4, 1), d(2026, 6, 1)),
        (False, d(2026, 6, 1), d(2026, 6, 10))]
    assert reports.split_months([], d(2026, 3, 1), d(2026, 5, 1)) == [  # by counter or officer alone
        (True, d(2026, 3, 1), d(2026, 5, 1))]
    assert reports.split_months(["quarter"], None, None) == [(True, None, None)]
    assert reports.split_months(["month"], d(2026, 3, 2), d(2026, 3, 30)) == [
        (False, d(2026, 3, 2), d(2026, 3, 30))]
    assert reports.split_months(["week", "month"], d(2026, 3, 1), d(2026, 5, 1)) == [
        (False, d(2026, 3, 1), d(2026, 5, 1))]


def test_a_period_with_partial_days_adds_the_ratings_at_its_edges_to_the_whole_days(db):
    setup_registry(db)
    store(db, [press(score=s, at=MIDNIGHT + d * DAY + timedelta(hours=h), seq=10 * d + h)
               for d, s in ((0, 1), (1, 2), (2, 3)) for h in (6, 12, 18)])
    for d in range(3):
        tamper(db, date(2026, 3, 2) + d * DAY, "quay-1", 0, extra_n4=100)
    # 09:00 on the first local day to 15:00 on the third: the middle day whole, the others partial
    period = RatingFilter(start=MIDNIGHT + timedelta(hours=9), end=MIDNIGHT + 2 * DAY + timedelta(hours=15))
    rows = {r.key["day"]: dict(r.counts) for r in summary(db, ["day"], period)}
    assert rows == {"2026-03-02": {4: 0, 3: 0, 2: 0, 1: 2}, "2026-03-03": {4: 100, 3: 0, 2: 3, 1: 0},
                    "2026-03-04": {4: 0, 3: 2, 2: 0, 1: 0}}


def test_a_period_inside_one_local_day_counts_the_ratings_themselves(db):
    setup_registry(db)
    store(db, [press(at=MIDNIGHT + timedelta(hours=h), seq=h) for h in (1, 5, 9)])
    tamper(db, date(2026, 3, 2), "quay-1", 0, extra_n4=100)
    period = RatingFilter(start=MIDNIGHT + timedelta(hours=2), end=MIDNIGHT + timedelta(hours=10))
    assert [r.total for r in summary(db, ["counter"], period)] == [2]


def test_split_days_gives_the_whole_local_days_and_the_partial_days_at_the_edges():
    at = lambda days, hours=0: MIDNIGHT + days * DAY + timedelta(hours=hours)  # noqa: E731
    d = lambda days: date(2026, 3, 2) + days * DAY  # noqa: E731
    assert reports.split_days(at(0), at(3), ZONE) == (d(0), d(3), [])
    assert reports.split_days(at(0, 5), at(3, 2), ZONE) == (d(1), d(3),
                                                            [(at(0, 5), at(1)), (at(3), at(3, 2))])
    assert reports.split_days(at(0, 5), at(0, 9), ZONE) == (d(1), d(0), [(at(0, 5), at(0, 9))])
    assert reports.split_days(at(0, 20), at(1, 3), ZONE) == (d(1), d(1),
                                                             [(at(0, 20), at(1)), (at(1), at(1, 3))])
    assert reports.split_days(None, at(2, 1), ZONE) == (None, d(2), [(at(2), at(2, 1))])
    assert reports.split_days(None, None, ZONE) == (None, None, [])


def test_a_filter_by_node_counts_the_ratings_themselves(db):
    setup_registry(db)
    store(db, [press(node="node-a", seq=1), press(node="node-b", seq=1)])
    tamper(db, date(2026, 3, 2), "quay-1", 0, extra_n4=100)
    assert [r.total for r in summary(db, ["counter"], RatingFilter(node="node-b"))] == [1]


def test_a_summary_in_another_zone_than_the_counts_counts_the_ratings_themselves(db, caplog, monkeypatch):
    monkeypatch.setattr(rating_counts, "_warned", set())  # it warns once per process
    setup_registry(db)
    store(db, [press(at=MIDNIGHT + timedelta(hours=h), seq=h) for h in (1, 8)])  # 2 March 08:00, 15:00
    tamper(db, date(2026, 3, 2), "quay-1", 0, extra_n4=100)
    with caplog.at_level(logging.WARNING, logger="thanthien.hub.services.rating_counts"):
        rows = summary(db, ["day"], tz="Europe/Berlin")  # 1 March 19:00 and 2 March 02:00 there
    assert [(r.key["day"], r.total) for r in rows] == [("2026-03-01", 1), ("2026-03-02", 1)]
    assert "rebuild-counts" in caplog.text


def test_rebuilding_in_a_zone_cuts_the_counts_in_its_local_days(db):
    setup_registry(db)
    store(db, [press(at=MIDNIGHT + timedelta(hours=h), seq=h) for h in (1, 8)])
    with db.session() as s:
        rating_counts.rebuild(s, zone="Europe/Berlin")
    assert counts(db) == {(date(2026, 3, 1), "quay-1", 0): (0, 0, 0, 1),
                          (date(2026, 3, 2), "quay-1", 0): (0, 0, 0, 1)}
    tamper(db, date(2026, 3, 1), "quay-1", 0, extra_n4=100)
    assert [r.total for r in summary(db, ["day"], tz="Europe/Berlin")] == [101, 1]


def _around(*midnights: tuple[int, int, int, int, int]) -> list[datetime]:
    """A second before and at each local midnight (given in UTC: year, month, day, hour, minute)."""
    out = []
    for y, m, d, h, mi in midnights:
        at = datetime(y, m, d, h, mi, tzinfo=UTC)
        out += [at - timedelta(seconds=1), at]
    return out


EDGES = {  # around zone changes: summer time both ways, a half-hour offset, a midnight that is skipped
    "Europe/Berlin": _around((2026, 3, 28, 23, 0), (2026, 10, 24, 22, 0), (2026, 10, 25, 23, 0)),
    "Asia/Kolkata": _around((2026, 3, 1, 18, 30)),
    "America/Santiago": _around((2026, 9, 6, 4, 0), (2026, 9, 7, 3, 0)),
}


@pytest.mark.parametrize("zone", sorted(EDGES))
def test_local_days_in_sql_are_the_local_dates_python_gives(db, zone):
    setup_registry(db)
    instants = EDGES[zone]
    store(db, [press(at=at, seq=i) for i, at in enumerate(instants, start=1)])
    want = Tally(at.astimezone(ZoneInfo(zone)).date().isoformat() for at in instants)
    assert {r.key["day"]: r.total for r in raw(db, ["day"], tz=zone)} == want


def test_the_default_zone_of_the_counts_is_the_hubs_default_time_zone():
    assert HubSection().timezone == rating_counts.DEFAULT_ZONE


# -- any period, any grouping: equal to a raw GROUP BY (hypothesis) ----------------------------------
FIRST = datetime(2026, 3, 26, 17, 0, tzinfo=UTC)  # 00:00 on Friday 27 March in Hà Nội
DAYS = 42  # to 8 May: a whole month, a quarter's end, ISO weeks
instants = st.one_of(
    st.integers(0, DAYS * 86400 - 1).map(lambda s: FIRST + timedelta(seconds=s)),
    st.tuples(st.integers(0, DAYS), st.integers(-2, 2)).map(  # at and around local midnights
        lambda t: FIRST + t[0] * DAY + timedelta(seconds=t[1])))
SPREAD = [(COUNTERS[i % 3], 1 + i % 4, FIRST + timedelta(hours=11 * i, minutes=37)) for i in range(91)]
"""Stored first in every example: presses every 11 hours over the days, at every counter and level."""
presses = st.lists(st.tuples(st.sampled_from(COUNTERS), st.integers(1, 4), instants), min_size=1, max_size=40)
operations = st.lists(st.one_of(
    st.tuples(st.just("store"), presses),
    st.tuples(st.just("store_again"), st.integers(0, 20)),
    st.tuples(st.just("on_duty"), st.integers(0, 2), st.sampled_from(COUNTERS), instants,
              st.integers(60, 6 * 86400)),
    st.tuples(st.just("off_duty"), st.integers(0, 20)),
), max_size=10).map(lambda ops: [("store", SPREAD), *ops])
bounds = st.one_of(st.none(), instants, instants, instants)
queries = st.lists(st.tuples(
    st.lists(st.sampled_from(reports.DIMENSIONS), unique=True, max_size=3), bounds, bounds,
    st.one_of(st.none(), st.sampled_from(COUNTERS)), st.one_of(st.none(), st.integers(0, 2)),
    st.one_of(st.none(), st.integers(1, 4)),
), min_size=1, max_size=6)
PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def run_operations(db: Database, ops: list[tuple]) -> list[int]:
    """A fresh database, then the ratings stored and the roster changes made in this order."""
    _clean(db)
    officers = setup_registry(db)
    batches: list[list[RatingEvent]] = []
    duties: list[Callable[[], None]] = []
    seq = 0
    for op, *args in ops:
        if op == "store":
            batch = []
            for counter, score, at in args[0]:
                seq += 1
                batch.append(press(counter, score, at, seq=seq))
            batches.append(batch)
            store(db, batch)
        elif op == "store_again" and batches:
            store(db, batches[args[0] % len(batches)])
        elif op == "on_duty":
            officer, counter, start, length = args
            with contextlib.suppress(Conflict):  # the counter has someone on duty then already
                duties.append(on_duty(db, officer_id=officers[officer], counter=counter, start=start,
                                      end=start + timedelta(seconds=length)))
        elif op == "off_duty" and duties:
            duties.pop(args[0] % len(duties))()
    return officers


@pytest.mark.slow
@PROPERTY
@given(ops=operations, asked=queries)
def test_any_period_and_grouping_equals_a_raw_group_by_over_the_ratings(db, ops, asked):
    officers = run_operations(db, ops)
    for group_by, start, end, counter, officer, score in asked:
        if start is not None and end is not None and end <= start:
            start, end = end, start + timedelta(seconds=1)
        flt = RatingFilter(start=start, end=end, counter=counter, score=score,
                           officer_id=officers[officer] if officer is not None else None)
        assert summary(db, group_by, flt) == raw(db, group_by, flt), (group_by, flt)


@pytest.mark.slow
@PROPERTY
@given(ops=operations)
def test_counts_kept_through_ratings_and_roster_changes_equal_counts_rebuilt(db, ops):
    run_operations(db, ops)
    kept = counts(db), months(db)
    with db.session() as s:
        rating_counts.rebuild(s)
    assert kept == (counts(db), months(db))


# -- counted again: the migration, a restore, the command ---------------------------------------------
def _fresh_database(db: Database, tmp_path: Path, request: pytest.FixtureRequest) -> Database:
    from hub.test_hub_migrations import _fresh_url

    fresh = Database(_fresh_url(db, tmp_path, request))
    request.addfinalizer(fresh.dispose)
    return fresh


def test_the_migration_counts_the_ratings_stored_before_it(db, tmp_path, request):
    fresh = _fresh_database(db, tmp_path, request)
    upgrade(fresh.engine, "0009")
    stored = [(MIDNIGHT + timedelta(hours=h), "quay-1" if h % 2 else "quay-2", 1 + h % 4)
              for h in range(-3, 30)]
    with fresh.engine.begin() as conn:
        conn.execute(insert(Rating), [
            {"node_id": "node-a", "event_id": uuid.uuid4(), "seq": i, "box": "box-1", "counter_code": c,
             "score": score, "pressed_at": at, "received_at": at, "officer_id": None}
            for i, (at, c, score) in enumerate(stored)])
    fresh.migrate()
    days: dict[tuple[date, str, int], list[int]] = {}
    by_month: dict[tuple[date, str, int], list[int]] = {}
    for at, c, score in stored:
        day = at.astimezone(ZONE).date()
        days.setdefault((day, c, 0), [0, 0, 0, 0])[score - 1] += 1
        by_month.setdefault((day.replace(day=1), c, 0), [0, 0, 0, 0])[score - 1] += 1
    assert (counts(fresh), months(fresh)) == ({k: tuple(v) for k, v in days.items()},
                                              {k: tuple(v) for k, v in by_month.items()})


def test_a_backup_leaves_the_counts_out_and_a_restore_counts_again_in_the_hubs_zone(db, tmp_path):
    setup_registry(db)
    store(db, [press(at=MIDNIGHT + timedelta(hours=h), seq=h) for h in (1, 8)])
    archive = tmp_path / "b.tar.gz"
    create_backup(db, data_dir=tmp_path / "hub", out=archive)
    with tarfile.open(archive) as tar:
        assert "tables/rating_counts.jsonl" not in tar.getnames()
    _clean(db)
    restore_backup(db, data_dir=tmp_path / "restored", archive=archive, tz="Europe/Berlin")
    assert counts(db) == {(date(2026, 3, 1), "quay-1", 0): (0, 0, 0, 1),
                          (date(2026, 3, 2), "quay-1", 0): (0, 0, 0, 1)}


def test_rebuild_counts_command_cuts_the_counts_in_the_configured_zone(tmp_path, capsys):
    from hub.e2e import write_toml
    from thanthien.cli import main

    config = write_toml(tmp_path / "hub.toml", {
        "hub": {"data_dir": str(tmp_path / "hub"), "timezone": "Europe/Berlin"},
        "database": {"url": f"sqlite:///{tmp_path / 'hub.db'}"},
        "http": {"secret_key": "test-secret-key-0123456789"}})
    assert main(["hub", "migrate", "--config", str(config)]) == 0
    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        store(db, [press(at=MIDNIGHT + timedelta(hours=1))])  # 2 March in Hà Nội, 1 March in Berlin
        assert main(["hub", "rebuild-counts", "--config", str(config)]) == 0
        assert counts(db) == {(date(2026, 3, 1), "quay-1", 0): (0, 0, 0, 1)}
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT zone FROM rating_count_zone")).scalar() == "Europe/Berlin"
    finally:
        db.dispose()
    assert "rating counts rebuilt: 1 rows" in capsys.readouterr().out
