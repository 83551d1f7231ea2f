"""The duty roster on SQLite and PostgreSQL: a weekly pattern in local time, leave, swaps and
one-off days; attribution at ingest in a fixed number of queries; a change counted before it
is applied, and applied to the stored ratings (and their daily counts)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from hub.hub_helpers import rating, rating_msg
from thanthien.hub.db.models import AuditEntry, Officer, Rating, RatingCount
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.roles import SYSTEM, ActingUser
from thanthien.hub.services import registry, roster
from thanthien.hub.services.errors import Conflict, Forbidden, Invalid

TZ = "Asia/Ho_Chi_Minh"
MONDAY = date(2026, 3, 2)  # the test clock starts on this Monday, 09:00 in Hà Nội


def local(day: date, hhmm: str) -> datetime:
    """A local time on a day, as UTC (Hà Nội is UTC+7 all year)."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=UTC) - timedelta(hours=7)


@pytest.fixture
def office(ctx):
    """Two counters and three officers: ids by name."""
    with ctx.db.session() as s:
        for code in ("quay-1", "quay-2"):
            registry.create_counter(s, actor=SYSTEM, code=code, name=code.replace("quay-", "Quầy "))
        ids = {name: registry.create_officer(s, actor=SYSTEM, code=f"cb-{name}", full_name=name.title()).id
               for name in ("lan", "minh", "hoa")}
    return ids


def weekly(s, officer_id: int, *, counter: str = "quay-1", weekdays=(1, 2, 3, 4, 5), starts="07:30",
           ends="11:30", valid_from: date = MONDAY, valid_until: date | None = None) -> roster.Applied:
    change = roster.new_pattern(s, actor=SYSTEM, counter=counter, officer_id=officer_id, weekdays=weekdays,
                                starts=starts, ends=ends, valid_from=valid_from, valid_until=valid_until,
                                tz=TZ)
    return roster.apply(s, change, actor=SYSTEM)


def exception(s, kind: str, officer_id: int, starts_at: datetime, ends_at: datetime,
              counter: str | None = "quay-1") -> roster.Applied:
    change = roster.new_exception(s, actor=SYSTEM, kind=kind, officer_id=officer_id, counter=counter,
                                  starts_at=starts_at, ends_at=ends_at, tz=TZ)
    return roster.apply(s, change, actor=SYSTEM)


def on_duty(ctx, *presses: tuple[str, datetime]) -> list[int | None]:
    with ctx.db.session(write=False) as s:
        return registry.officers_on_duty(s, presses=list(presses))


def stored(ctx, ctx_clock, *times: datetime, counter: str = "quay-1") -> None:
    """Presses at these times, ingested (a node the registry does not know: not checked)."""
    IngestWorker(ctx).process([rating_msg(rating(seq=i + 1, counter=counter, pressed_at=at), ctx_clock())
                               for i, at in enumerate(times)])


def officers_of_ratings(ctx) -> list[int | None]:
    with ctx.db.session(write=False) as s:
        return list(s.scalars(select(Rating.officer_id).order_by(Rating.pressed_at)))


# -- who is on duty --------------------------------------------------------------------------------
def test_a_weekly_pattern_names_its_officer_on_its_weekdays_between_its_local_hours(ctx, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"])
    tuesday = MONDAY + timedelta(days=1)
    assert on_duty(ctx, ("quay-1", local(tuesday, "07:30")), ("quay-1", local(tuesday, "11:29")),
                   ("quay-1", local(tuesday, "11:30")), ("quay-1", local(tuesday, "07:29"))) == \
        [office["lan"], office["lan"], None, None]


def test_a_weekly_pattern_names_nobody_on_other_weekdays_other_counters_or_before_it_begins(ctx, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"], valid_from=MONDAY + timedelta(days=1))
    saturday = MONDAY + timedelta(days=5)
    tuesday = MONDAY + timedelta(days=1)
    assert on_duty(ctx, ("quay-1", local(saturday, "09:00")), ("quay-2", local(tuesday, "09:00")),
                   ("quay-1", local(MONDAY, "09:00"))) == [None, None, None]


def test_a_pattern_ended_after_a_day_names_nobody_after_it(ctx, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"], valid_until=MONDAY + timedelta(days=2))
    assert on_duty(ctx, ("quay-1", local(MONDAY + timedelta(days=2), "09:00")),
                   ("quay-1", local(MONDAY + timedelta(days=3), "09:00"))) == [office["lan"], None]


def test_an_officer_on_leave_leaves_their_counter_without_anyone(ctx, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"])
        exception(s, "leave", office["lan"], local(MONDAY, "00:00"),
                  local(MONDAY + timedelta(days=1), "00:00"), counter=None)
    assert on_duty(ctx, ("quay-1", local(MONDAY, "09:00")),
                   ("quay-1", local(MONDAY + timedelta(days=1), "09:00"))) == [None, office["lan"]]


def test_a_swap_names_the_officer_who_stands_in(ctx, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"])
        exception(s, "swap", office["minh"], local(MONDAY, "07:30"), local(MONDAY, "11:30"))
    assert on_duty(ctx, ("quay-1", local(MONDAY, "09:00"))) == [office["minh"]]


def test_a_one_off_day_names_its_officer_where_the_pattern_names_nobody(ctx, office):
    saturday = MONDAY + timedelta(days=5)
    with ctx.db.session() as s:
        weekly(s, office["lan"])
        exception(s, "extra", office["hoa"], local(saturday, "08:00"), local(saturday, "11:00"))
    assert on_duty(ctx, ("quay-1", local(saturday, "09:00"))) == [office["hoa"]]


def test_a_batch_of_presses_at_many_counters_is_attributed_in_two_queries(ctx, office):
    with ctx.db.session() as s:
        for i in range(3, 23):
            registry.create_counter(s, actor=SYSTEM, code=f"quay-{i}", name=f"Quầy {i}")
            weekly(s, office["lan"], counter=f"quay-{i}")
        exception(s, "leave", office["minh"], local(MONDAY, "00:00"), local(MONDAY, "23:00"), counter=None)
    presses = [(f"quay-{3 + i % 20}", local(MONDAY, "07:30") + timedelta(minutes=i)) for i in range(500)]
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(ctx.db.engine, "before_cursor_execute", listener)
    try:
        found = on_duty(ctx, *presses)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", listener)
    assert found == [office["lan"]] * 240 + [None] * 260  # 07:30-11:30 is 240 minutes
    assert len([q for q in statements if q.lstrip().upper().startswith("SELECT")]) == 2


# -- the rules of an edit --------------------------------------------------------------------------
def test_a_pattern_that_overlaps_another_at_the_same_counter_is_refused_naming_it(ctx, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"])
        with pytest.raises(Conflict, match="Quầy 1 đã có Lan trực Thứ Sáu 07:30–11:30 từ 02/03/2026"):
            roster.new_pattern(s, actor=SYSTEM, counter="quay-1", officer_id=office["minh"], weekdays=[5, 6],
                               starts="11:00", ends="17:00", valid_from=MONDAY, tz=TZ)


def test_a_pattern_after_another_ends_or_on_other_hours_is_accepted(ctx, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"], valid_until=MONDAY + timedelta(days=6))
        weekly(s, office["minh"], valid_from=MONDAY + timedelta(days=7))
        weekly(s, office["hoa"], starts="13:30", ends="17:00")
        assert len(roster.list_patterns(s, viewer=SYSTEM, counter="quay-1")) == 3


@pytest.mark.parametrize(("starts", "ends", "message"), [("11:30", "07:30", "Giờ kết thúc ca phải sau"),
                                                          ("7h30", "11:30", r"không hợp lệ \(dạng HH:MM\)"),
                                                          ("07:30", "24:01", r"không hợp lệ \(dạng HH:MM\)")])
def test_a_pattern_with_hours_that_do_not_make_a_shift_is_refused(ctx, office, starts, ends, message):
    with ctx.db.session() as s, pytest.raises(Invalid, match=message):
        roster.new_pattern(s, actor=SYSTEM, counter="quay-1", officer_id=office["lan"], weekdays=[1],
                           starts=starts, ends=ends, valid_from=MONDAY, tz=TZ)


def test_a_shift_at_a_counter_during_the_officers_leave_is_refused(ctx, office):
    with ctx.db.session() as s:
        exception(s, "leave", office["hoa"], local(MONDAY, "00:00"), local(MONDAY, "23:00"), counter=None)
        with pytest.raises(Conflict, match="Hoa có nghỉ phép"):
            roster.new_exception(s, actor=SYSTEM, kind="swap", officer_id=office["hoa"], counter="quay-2",
                                 starts_at=local(MONDAY, "08:00"), ends_at=local(MONDAY, "09:00"), tz=TZ)


def test_two_exceptions_putting_officers_at_one_counter_at_once_are_refused(ctx, office):
    with ctx.db.session() as s:
        exception(s, "extra", office["hoa"], local(MONDAY, "08:00"), local(MONDAY, "12:00"))
        with pytest.raises(Conflict, match="Quầy đã có Hoa"):
            roster.new_exception(s, actor=SYSTEM, kind="swap", officer_id=office["minh"], counter="quay-1",
                                 starts_at=local(MONDAY, "11:00"), ends_at=local(MONDAY, "13:00"), tz=TZ)


def test_a_retired_officer_or_counter_is_not_offered_for_the_roster(ctx, office):
    with ctx.db.session() as s:
        registry.retire(s, actor=SYSTEM, model=Officer, ident=office["hoa"], now=ctx.clock())
        with pytest.raises(Invalid, match="Cán bộ Hoa đã ngừng công tác"):
            roster.new_pattern(s, actor=SYSTEM, counter="quay-1", officer_id=office["hoa"], weekdays=[1],
                               starts="07:30", ends="11:30", valid_from=MONDAY, tz=TZ)
        counter = s.scalar(select(registry.Counter).where(registry.Counter.code == "quay-2"))
        registry.retire(s, actor=SYSTEM, model=registry.Counter, ident=counter.id, now=ctx.clock())
        with pytest.raises(Invalid, match="Quầy 2 đã ngừng sử dụng"):
            roster.new_exception(s, actor=SYSTEM, kind="extra", officer_id=office["lan"], counter="quay-2",
                                 starts_at=local(MONDAY, "08:00"), ends_at=local(MONDAY, "09:00"), tz=TZ)


def test_only_roster_editors_may_change_the_roster(ctx, office):
    with ctx.db.session() as s, pytest.raises(Forbidden):
        roster.new_pattern(s, actor=ActingUser("lanhdao", "leader"), counter="quay-1",
                           officer_id=office["lan"], weekdays=[1], starts="07:30", ends="11:30",
                           valid_from=MONDAY, tz=TZ)


# -- changes after ratings were stored -------------------------------------------------------------
def test_the_preview_counts_the_stored_ratings_a_change_moves_and_changes_nothing(ctx, clock, office):
    clock.advance(7 * 86400)
    stored(ctx, clock, local(MONDAY, "08:00"), local(MONDAY, "10:00"), local(MONDAY, "14:00"))
    with ctx.db.session() as s:
        change = roster.new_pattern(s, actor=SYSTEM, counter="quay-1", officer_id=office["lan"], weekdays=[1],
                                    starts="07:30", ends="11:30", valid_from=MONDAY, tz=TZ)
        impact = roster.preview(s, change)
    assert (impact.count, impact.moves()) == (2, [(None, office["lan"], 2)])
    assert officers_of_ratings(ctx) == [None, None, None]
    with ctx.db.session(write=False) as s:
        assert roster.list_patterns(s, viewer=SYSTEM) == []


def test_applying_a_change_moves_the_stored_ratings_and_its_audit_entry_counts_them(ctx, clock, office):
    clock.advance(7 * 86400)
    stored(ctx, clock, local(MONDAY, "08:00"), local(MONDAY, "10:00"), local(MONDAY, "14:00"))
    with ctx.db.session() as s:
        applied = weekly(s, office["lan"], weekdays=[1])
    assert applied.impact.count == 2
    assert officers_of_ratings(ctx) == [office["lan"], office["lan"], None]
    with ctx.db.session(write=False) as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "roster.add")).one()
    assert (entry.subject, entry.details["ratings_changed"]) == ("roster:quay-1", 2)


def test_a_change_is_refused_when_its_count_is_no_longer_the_one_shown(ctx, clock, office):
    clock.advance(7 * 86400)
    stored(ctx, clock, local(MONDAY, "08:00"))
    with ctx.db.session() as s:
        change = roster.new_pattern(s, actor=SYSTEM, counter="quay-1", officer_id=office["lan"], weekdays=[1],
                                    starts="07:30", ends="11:30", valid_from=MONDAY, tz=TZ)
        with pytest.raises(Conflict, match="nay là 1, không còn là 0"):
            roster.apply(s, change, actor=SYSTEM, expected=0)
    assert officers_of_ratings(ctx) == [None]


def test_leave_added_later_takes_the_stored_ratings_from_the_officer(ctx, clock, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"])
    clock.advance(7 * 86400)
    stored(ctx, clock, local(MONDAY, "08:00"), local(MONDAY + timedelta(days=1), "08:00"))
    assert officers_of_ratings(ctx) == [office["lan"], office["lan"]]
    with ctx.db.session() as s:
        moved = exception(s, "leave", office["lan"], local(MONDAY, "00:00"),
                          local(MONDAY + timedelta(days=1), "00:00"), counter=None).impact
    assert moved.moves() == [(office["lan"], None, 1)]
    assert officers_of_ratings(ctx) == [None, office["lan"]]


def test_ending_a_pattern_keeps_the_ratings_up_to_its_last_day(ctx, clock, office):
    with ctx.db.session() as s:
        pattern_id = weekly(s, office["lan"]).patterns[0].id
    clock.advance(7 * 86400)
    stored(ctx, clock, local(MONDAY, "08:00"), local(MONDAY + timedelta(days=1), "08:00"))
    with ctx.db.session() as s:
        change = roster.end_pattern(s, actor=SYSTEM, pattern_id=pattern_id, last_day=MONDAY)
        assert roster.apply(s, change, actor=SYSTEM).impact.count == 1
    assert officers_of_ratings(ctx) == [office["lan"], None]


def test_ending_a_pattern_before_it_began_removes_it_with_its_ratings(ctx, clock, office):
    with ctx.db.session() as s:
        pattern_id = weekly(s, office["lan"]).patterns[0].id
    clock.advance(7 * 86400)
    stored(ctx, clock, local(MONDAY, "08:00"))
    with ctx.db.session() as s:
        roster.apply(s, roster.end_pattern(s, actor=SYSTEM, pattern_id=pattern_id,
                                           last_day=MONDAY - timedelta(days=1)), actor=SYSTEM)
        assert roster.list_patterns(s, viewer=SYSTEM) == []
    assert officers_of_ratings(ctx) == [None]


def test_removing_an_exception_gives_its_ratings_back_to_the_pattern(ctx, clock, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"])
        swap_id = exception(s, "swap", office["minh"], local(MONDAY, "07:30"), local(MONDAY, "11:30")) \
            .exceptions[0].id
    clock.advance(7 * 86400)
    stored(ctx, clock, local(MONDAY, "08:00"))
    assert officers_of_ratings(ctx) == [office["minh"]]
    with ctx.db.session() as s:
        roster.apply(s, roster.drop_exception(s, actor=SYSTEM, exception_id=swap_id), actor=SYSTEM)
    assert officers_of_ratings(ctx) == [office["lan"]]


def test_the_daily_counts_follow_ratings_a_roster_change_moves(ctx, clock, office):
    clock.advance(7 * 86400)
    stored(ctx, clock, local(MONDAY, "08:00"), local(MONDAY, "09:00"))
    with ctx.db.session() as s:
        weekly(s, office["lan"], weekdays=[1])
    with ctx.db.session(write=False) as s:
        counts = dict(s.execute(select(RatingCount.officer_id, func.sum(RatingCount.n4))
                                .where(RatingCount.counter_code == "quay-1")
                                .group_by(RatingCount.officer_id)).all())
    assert {k: v for k, v in counts.items() if v} == {office["lan"]: 2}


# -- the view of a week ----------------------------------------------------------------------------
def test_the_duties_of_a_day_show_the_pattern_a_swap_and_whom_it_stands_in_for(ctx, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"])
        exception(s, "swap", office["minh"], local(MONDAY, "09:30"), local(MONDAY, "10:30"))
        found = roster.duties(s, viewer=SYSTEM, counters=["quay-1"], start=local(MONDAY, "00:00"),
                              end=local(MONDAY + timedelta(days=1), "00:00"), days_in=TZ)
    assert [(d.starts_at, d.ends_at, d.officer_id, d.source, d.replaces) for d in found] == [
        (local(MONDAY, "07:30"), local(MONDAY, "09:30"), office["lan"], "pattern", None),
        (local(MONDAY, "09:30"), local(MONDAY, "10:30"), office["minh"], "swap", office["lan"]),
        (local(MONDAY, "10:30"), local(MONDAY, "11:30"), office["lan"], "pattern", None)]


def test_the_duties_of_a_week_are_cut_at_each_local_midnight(ctx, office):
    with ctx.db.session() as s:
        exception(s, "extra", office["hoa"], local(MONDAY, "00:00"),
                  local(MONDAY + timedelta(days=2), "00:00"))
        found = roster.duties(s, viewer=SYSTEM, counters=["quay-1"], start=local(MONDAY, "00:00"),
                              end=local(MONDAY + timedelta(days=7), "00:00"), days_in=TZ)
    assert [(d.starts_at, d.source) for d in found] == [
        (local(MONDAY, "00:00"), "extra"), (local(MONDAY + timedelta(days=1), "00:00"), "extra")]


def test_a_leave_shows_as_a_stretch_without_anyone_naming_whom_the_pattern_names(ctx, office):
    with ctx.db.session() as s:
        weekly(s, office["lan"])
        exception(s, "leave", office["lan"], local(MONDAY, "00:00"), local(MONDAY, "10:00"), counter=None)
        found = roster.duties(s, viewer=SYSTEM, counters=["quay-1"], start=local(MONDAY, "00:00"),
                              end=local(MONDAY, "12:00"))
    assert [(d.officer_id, d.source, d.replaces) for d in found] == [(None, "leave", office["lan"]),
                                                                      (office["lan"], "pattern", None)]


def test_a_view_of_more_than_three_months_at_once_is_refused(ctx, office):
    with ctx.db.session(write=False) as s, pytest.raises(Invalid, match="tối đa 92 ngày"):
        roster.duties(s, viewer=SYSTEM, counters=["quay-1"], start=local(MONDAY, "00:00"),
                      end=local(MONDAY + timedelta(days=93), "00:00"))


def test_a_roster_date_outside_the_years_it_may_name_is_refused(ctx, office):
    with ctx.db.session() as s, pytest.raises(Invalid, match="trong các năm 2000–2100"):
        roster.new_pattern(s, actor=SYSTEM, counter="quay-1", officer_id=office["lan"], weekdays=[1],
                           starts="07:30", ends="11:30", valid_from=MONDAY, valid_until=date(9999, 12, 31),
                           tz=TZ)
