"""Quiet-hours exceptions (SQLite and PostgreSQL): the chairman's greeting at the moment of giao
thừa is approved because a leader let that one broadcast play in quiet hours, with a reason,
not because it was marked emergency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from broadcasts.support import APPROVER, DRAFTER, media_row, speakers, spec
from thanthien.hub.db.models import AuditEntry, Broadcast, Occurrence
from thanthien.hub.roles import LEADER, SYSTEM, ActingUser
from thanthien.hub.services import broadcasts, plans, zone_rules
from thanthien.hub.services.broadcasts import BroadcastView
from thanthien.hub.services.errors import Conflict, Forbidden, Invalid
from thanthien.hub.services.schedule import BroadcastSettings
from thanthien.hub.services.zone_rules import RuleSpec, Slot

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CFG = BroadcastSettings()
CHAIRMAN = ActingUser("chu-tich", LEADER)
REASON = "Lời chúc của Chủ tịch UBND đúng thời khắc giao thừa"
# 00:00 on mùng một Tết: the moment of giao thừa (the clock is 2 March 2026; next Tết 6 Feb 2027)
GIAO_THUA = {"title": "Lời chúc giao thừa", "schedule_kind": "holiday", "local_time": "00:00",
             "holidays": ["tet_1"]}
MIDNIGHT_2027 = datetime(2027, 2, 5, 17, 0, tzinfo=UTC)


@pytest.fixture
def sha(ctx):
    with ctx.db.session() as s:
        speakers(s, {"ban-a": ["loa-1", "loa-2"]})
        return media_row(s, ctx.clock(), duration_s=90.0)


def create(ctx, sha, *, actor=DRAFTER, **over) -> int:
    with ctx.db.session() as s:
        return broadcasts.create_broadcast(
            s, spec=spec(sha, **{**GIAO_THUA, **over}), actor=actor, now=ctx.clock(), tz=TZ, cfg=CFG
        ).id


def requested(ctx, sha, **over) -> int:
    """A draft of the giao thừa greeting whose author asked for an exception."""
    return create(ctx, sha, quiet_exception_requested=True, **over)


def grant(ctx, bid, *, actor=CHAIRMAN, reason=REASON) -> None:
    with ctx.db.session() as s:
        broadcasts.grant_quiet_exception(s, broadcast_id=bid, actor=actor, reason=reason, now=ctx.clock(),
                                         tz=TZ, cfg=CFG)


def approve(ctx, bid, *, actor=APPROVER) -> None:
    with ctx.db.session() as s:
        broadcasts.approve_broadcast(s, broadcast_id=bid, actor=actor, now=ctx.clock(), tz=TZ, cfg=CFG)


def edit(ctx, sha, bid, **over) -> None:
    with ctx.db.session() as s:
        broadcasts.update_broadcast(s, broadcast_id=bid, spec=spec(sha, **{**GIAO_THUA, **over}),
                                    actor=DRAFTER, now=ctx.clock(), tz=TZ, cfg=CFG)


def row(ctx, bid) -> BroadcastView:
    with ctx.db.session(write=False) as s:
        return BroadcastView.of(s.get(Broadcast, bid), TZ)


def test_a_midnight_greeting_is_refused_unless_its_author_asks_for_an_exception(ctx, sha):
    with pytest.raises(Invalid, match=r"giờ yên tĩnh \(21:30–05:30\).*00:00 06/02/2027.*đề nghị ngoại lệ"):
        create(ctx, sha)
    with ctx.db.session(write=False) as s:
        assert s.scalars(select(Broadcast)).all() == []


def test_a_draft_asking_for_an_exception_cannot_be_approved_before_a_leader_grants_it(ctx, sha):
    bid = requested(ctx, sha)
    with pytest.raises(Invalid, match="cần lãnh đạo cho phép ngoại lệ giờ yên tĩnh trước khi phê duyệt"):
        approve(ctx, bid)
    assert row(ctx, bid).status == "draft"


def test_with_a_leaders_exception_the_giao_thua_greeting_is_approved_without_being_emergency(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    approve(ctx, bid)
    view = row(ctx, bid)
    assert (view.status, view.priority) == ("approved", "normal")
    assert view.quiet_exception is not None
    assert (view.quiet_exception.granted_by, view.quiet_exception.reason) == ("chu-tich", REASON)


def test_an_approved_greeting_with_an_exception_is_in_the_speakers_plans_at_midnight(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    approve(ctx, bid)
    ctx.clock.now = datetime(2027, 2, 4, 2, 0, tzinfo=UTC)  # two days before Tết Đinh Mùi
    with ctx.db.session() as s:
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
        starts = {o.start_at for o in s.scalars(select(Occurrence).where(Occurrence.broadcast_id == bid))}
        items = plans.node_plan_items(s, node_id="loa-1", now=ctx.clock(), cfg=CFG, tz=TZ)
    assert starts == {MIDNIGHT_2027}
    assert [(i.start_at, i.priority) for i in items] == [(MIDNIGHT_2027, "normal")]


def test_the_calendar_shows_the_exception_with_its_reason(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    with ctx.db.session(write=False) as s:
        day = timedelta(days=1)
        week = plans.calendar(s, viewer=SYSTEM, start=MIDNIGHT_2027 - day, end=MIDNIGHT_2027 + day, tz=TZ)
    assert [(e.broadcast_id, e.start_at, e.quiet_exception) for e in week] == [(bid, MIDNIGHT_2027, REASON)]


def test_granting_an_exception_is_audited_with_who_and_why(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    with ctx.db.session(write=False) as s:
        log = broadcasts.audit_log(s, viewer=SYSTEM, broadcast_id=bid)
    assert [(a.action, a.username) for a in log] == [("created", "can-bo"),
                                                     ("quiet_exception_granted", "chu-tich")]
    assert log[0].details["quiet_exception_needed"] == MIDNIGHT_2027.isoformat()
    assert log[1].details["reason"] == REASON
    assert log[1].details["quiet_exception"]["granted_by"] == "chu-tich"


def test_granting_and_withdrawing_an_exception_are_in_the_administrative_audit_log(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    with ctx.db.session() as s:
        broadcasts.revoke_quiet_exception(s, broadcast_id=bid, actor=APPROVER, now=ctx.clock(), tz=TZ,
                                          cfg=CFG)
    with ctx.db.session(write=False) as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.subject == f"broadcast:{bid}")
                            .order_by(AuditEntry.id)).all()
    assert [(e.action, e.actor_username, e.subject, e.details["reason"]) for e in entries] == [
        ("broadcast.quiet_hours_exception", "chu-tich", f"broadcast:{bid}", REASON),
        ("broadcast.quiet_hours_exception_revoked", "lanh-dao", f"broadcast:{bid}", REASON),
    ]


def test_an_officer_cannot_grant_an_exception(ctx, sha):
    bid = requested(ctx, sha)
    with pytest.raises(Forbidden):
        grant(ctx, bid, actor=DRAFTER)
    assert row(ctx, bid).quiet_exception is None


@pytest.mark.parametrize("reason", ["", "   \n ", "\x00\x07"])
def test_an_exception_needs_a_reason(ctx, sha, reason):
    bid = requested(ctx, sha)
    with pytest.raises(Invalid, match="lý do"):
        grant(ctx, bid, reason=reason)


def test_an_exception_keeps_its_reason_on_one_line_without_control_characters(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid, reason="  Lời chúc\x00 giao thừa\n\tcủa Chủ tịch ")
    assert row(ctx, bid).quiet_exception.reason == "Lời chúc giao thừa của Chủ tịch"


def test_an_exception_is_refused_for_a_broadcast_that_plays_outside_quiet_hours(ctx, sha):
    bid = create(ctx, sha, local_time="07:00")
    with pytest.raises(Invalid, match="không rơi vào giờ yên tĩnh"):
        grant(ctx, bid)


def test_an_emergency_broadcast_needs_no_exception(ctx, sha):
    bid = create(ctx, sha, priority="emergency")
    with pytest.raises(Invalid, match="khẩn cấp"):
        grant(ctx, bid)


def test_an_exception_is_granted_once(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    with pytest.raises(Conflict, match="chu-tich"):
        grant(ctx, bid, actor=APPROVER)


def test_an_exception_covers_only_the_broadcast_it_was_granted_for(ctx, sha):
    granted, other = requested(ctx, sha), requested(ctx, sha, title="Một bản tin khác lúc nửa đêm")
    grant(ctx, granted)
    with pytest.raises(Invalid, match="giờ yên tĩnh"):
        approve(ctx, other)


def test_an_edit_that_moves_the_time_drops_the_exception_and_approval_needs_a_new_one(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    edit(ctx, sha, bid, local_time="00:30", quiet_exception_requested=True)
    assert row(ctx, bid).quiet_exception is None
    with ctx.db.session(write=False) as s:
        log = broadcasts.audit_log(s, viewer=SYSTEM, broadcast_id=bid)
        dropped = log[-1].details["quiet_exception_dropped"]
    assert dropped["reason"] == REASON
    with pytest.raises(Invalid, match="cần lãnh đạo cho phép ngoại lệ"):
        approve(ctx, bid)


def test_an_edit_that_changes_the_audio_drops_the_exception(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    with ctx.db.session() as s:
        other = media_row(s, ctx.clock(), name="quang-cao", duration_s=90.0)
    edit(ctx, sha=other, bid=bid, quiet_exception_requested=True)
    assert row(ctx, bid).quiet_exception is None


def test_an_edit_that_changes_the_schedule_without_asking_again_is_refused_and_keeps_the_exception(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    with pytest.raises(Invalid, match="ngoại lệ đã cấp không còn áp dụng"):
        edit(ctx, sha, bid, local_time="00:30")
    view = row(ctx, bid)
    assert (view.local_time, view.quiet_exception.reason) == ("00:00", REASON)


def test_an_edit_of_the_title_only_keeps_the_exception(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    edit(ctx, sha, bid, title="Lời chúc Tết Đinh Mùi của Chủ tịch UBND")
    view = row(ctx, bid)
    assert (view.status, view.quiet_exception.reason) == ("draft", REASON)


def test_withdrawing_the_exception_of_an_approved_greeting_returns_it_to_draft_and_out_of_the_plans(ctx, sha):
    bid = requested(ctx, sha)
    grant(ctx, bid)
    approve(ctx, bid)
    ctx.clock.now = datetime(2027, 2, 4, 2, 0, tzinfo=UTC)
    with ctx.db.session() as s:
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
        broadcasts.revoke_quiet_exception(s, broadcast_id=bid, actor=APPROVER, now=ctx.clock(), tz=TZ,
                                          cfg=CFG)
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
        left = s.scalars(select(Occurrence).where(Occurrence.broadcast_id == bid)).all()
        log = broadcasts.audit_log(s, viewer=SYSTEM, broadcast_id=bid)
    view = row(ctx, bid)
    assert (view.status, view.quiet_exception, left) == ("draft", None, [])
    assert (log[-1].action, log[-1].username, log[-1].details["revoked"]["reason"]) == (
        "quiet_exception_revoked", "lanh-dao", REASON)


def _slots(ctx) -> None:
    """The commune allows two 60-minute slots (05:30, 17:00): midnight lies outside both."""
    slots = [Slot(start="05:30", minutes=60), Slot(start="17:00", minutes=60)]
    with ctx.db.session() as s:
        zone_rules.set_rule(s, actor=SYSTEM, where=zone_rules.scope(s, viewer=SYSTEM), now=ctx.clock(), tz=TZ,
                            cfg=CFG,
                            spec=RuleSpec(slots=slots))


def test_the_exception_lets_the_greeting_play_outside_the_communes_slots_too(ctx, sha):
    _slots(ctx)
    bid = requested(ctx, sha)
    grant(ctx, bid)
    approve(ctx, bid)
    assert row(ctx, bid).status == "approved"


def test_without_an_exception_a_midnight_greeting_is_refused_by_the_slots_too(ctx, sha):
    _slots(ctx)
    with pytest.raises(Invalid, match="giờ yên tĩnh"):
        create(ctx, sha)
    with pytest.raises(Invalid, match="ngoài khung giờ được phép"):
        create(ctx, sha, local_time="12:00", schedule_kind="daily", holidays=[])
