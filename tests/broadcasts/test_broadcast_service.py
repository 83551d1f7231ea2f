"""Broadcasts in the database (SQLite and PostgreSQL): validation, quiet hours, drafts and
approval with their audit, occurrences per target, plan revisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from broadcasts.support import APPROVER, DRAFTER, media_row, speakers, spec
from thanthien.hub.db.models import Broadcast, BroadcastAudit, Delivery, Device, Occurrence
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import broadcasts, plans, registry
from thanthien.hub.services.errors import Conflict, Invalid
from thanthien.hub.services.schedule import BroadcastSettings

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CFG = BroadcastSettings()
ZONES = {"ban-a": ["loa-1", "loa-2"], "ban-b": ["loa-3"]}


@pytest.fixture
def sha(ctx):
    with ctx.db.session() as s:
        speakers(s, ZONES)
        return media_row(s, ctx.clock(), duration_s=90.0)


def create(ctx, sha, **over):
    with ctx.db.session() as s:
        return broadcasts.create_broadcast(
            s, spec=spec(sha, **over), actor=DRAFTER, now=ctx.clock(), tz=TZ, cfg=CFG
        ).id


def approve(ctx, broadcast_id):
    with ctx.db.session() as s:
        broadcasts.approve_broadcast(
            s, broadcast_id=broadcast_id, actor=APPROVER, now=ctx.clock(), tz=TZ, cfg=CFG
        )
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)


def count(ctx, model) -> int:
    with ctx.db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_recurring_slot_inside_quiet_hours_is_refused_and_nothing_is_stored(ctx, sha):
    with pytest.raises(Invalid, match=r"giờ yên tĩnh \(21:30–05:30\).*22:00"):
        create(ctx, sha, local_time="22:00")
    assert count(ctx, Broadcast) == count(ctx, BroadcastAudit) == 0


def test_a_broadcast_still_playing_when_quiet_hours_begin_is_refused(ctx, sha):
    with pytest.raises(Invalid, match="giờ yên tĩnh"):
        create(ctx, sha, local_time="21:29")  # the clip lasts 90 s


def test_an_rrule_slot_inside_quiet_hours_is_refused(ctx, sha):
    with pytest.raises(Invalid, match="giờ yên tĩnh"):
        create(ctx, sha, schedule_kind="rrule", local_time=None, rrule="FREQ=DAILY;BYHOUR=4;BYMINUTE=0")


def test_an_emergency_broadcast_may_play_in_quiet_hours(ctx, sha):
    assert create(ctx, sha, local_time="23:00", priority="emergency") > 0


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (
            {"schedule_kind": "once", "local_time": None, "start_at": datetime(2026, 3, 1, tzinfo=UTC)},
            "đã qua",
        ),
        ({"local_time": "7h"}, "HH:MM"),
        ({"schedule_kind": "weekdays", "weekdays": []}, "thứ trong tuần"),
        ({"schedule_kind": "holiday", "holidays": ["christmas"]}, "christmas"),
        ({"schedule_kind": "rrule", "rrule": "FREQ=SOMETIMES"}, "RRULE"),
        ({"target_kind": "zones", "target_zones": ["ban-z"]}, "ban-z"),
        ({"target_kind": "nodes", "target_nodes": ["loa-9"]}, "loa-9"),
    ],
)
def test_bad_schedules_and_targets_are_refused_with_a_clear_message(ctx, sha, over, message):
    with pytest.raises(Invalid, match=message):
        create(ctx, sha, **over)
    assert count(ctx, Broadcast) == 0


def test_drafts_play_nowhere_until_a_leader_approves(ctx, sha):
    bid = create(ctx, sha, target_kind="zones", target_zones=["ban-a"])
    with ctx.db.session() as s:
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
    assert count(ctx, Occurrence) == 0
    approve(ctx, bid)
    with ctx.db.session() as s:
        occs = s.scalars(select(Occurrence).order_by(Occurrence.start_at)).all()
        # 09:00 local now: today's 07:00 has passed; the next three days at 07:00 local
        assert [o.start_at.astimezone(TZ).strftime("%d %H:%M") for o in occs] == [
            "03 07:00",
            "04 07:00",
            "05 07:00",
        ]
        targets = {d.node_id for d in s.scalars(select(Delivery))}
    assert targets == {"loa-1", "loa-2"}


def test_every_change_is_audited_and_an_edit_needs_approval_again(ctx, sha):
    bid = create(ctx, sha)
    approve(ctx, bid)
    assert count(ctx, Occurrence) == 3
    with ctx.db.session() as s:
        broadcasts.update_broadcast(
            s,
            broadcast_id=bid,
            spec=spec(sha, local_time="08:00"),
            actor=DRAFTER,
            now=ctx.clock(),
            tz=TZ,
            cfg=CFG,
        )
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
    assert count(ctx, Occurrence) == 0
    approve(ctx, bid)
    with ctx.db.session() as s:
        broadcasts.archive_broadcast(s, broadcast_id=bid, actor=APPROVER, now=ctx.clock())
        log = broadcasts.audit_log(s, viewer=SYSTEM, broadcast_id=bid)
        assert [(a.action, a.username) for a in log] == [
            ("created", "can-bo"),
            ("approved", "lanh-dao"),
            ("updated", "can-bo"),
            ("approved", "lanh-dao"),
            ("archived", "lanh-dao"),
        ]
        assert log[2].details["local_time"] == "08:00" and log[2].details["previous_status"] == "approved"


def test_only_drafts_can_be_approved(ctx, sha):
    bid = create(ctx, sha)
    approve(ctx, bid)
    with pytest.raises(Conflict, match="bản nháp"):
        approve(ctx, bid)


def test_plan_revision_increases_only_when_the_items_change(ctx, sha):
    bid = create(ctx, sha, target_kind="nodes", target_nodes=["loa-3"])

    def publish(force: bool):
        with ctx.db.session() as s:
            plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
            out = plans.plans_to_publish(s, now=ctx.clock(), cfg=CFG, tz=TZ, force=force)
            return {p.node_id: p.plan for p in out}

    first = publish(force=False)
    assert {n: p.revision for n, p in first.items()} == {"loa-1": 1, "loa-2": 1, "loa-3": 1}
    assert publish(force=False) == {}
    approve(ctx, bid)
    second = publish(force=False)
    assert list(second) == ["loa-3"] and second["loa-3"].revision == 2 and len(second["loa-3"].items) == 3
    item = second["loa-3"].items[0]
    assert (item.media_sha256, item.media_url, item.priority, item.volume) == (
        sha,
        f"media/{sha}",
        "normal",
        100,
    )
    ctx.clock.advance(60)
    again = publish(force=True)
    assert again["loa-3"].revision == 2 and again["loa-3"].generated_at > second["loa-3"].generated_at


def test_a_plan_keeps_an_occurrence_for_a_while_after_its_start(ctx, sha):
    bid = create(ctx, sha, schedule_kind="once", local_time=None, start_at=ctx.clock() + timedelta(minutes=5))
    approve(ctx, bid)
    ctx.clock.advance(5 * 60 + CFG.plan_keep_past_s - 1)
    with ctx.db.session() as s:
        assert len(plans.node_plan_items(s, node_id="loa-1", now=ctx.clock(), cfg=CFG, tz=TZ)) == 1
        ctx.clock.advance(2)
        assert plans.node_plan_items(s, node_id="loa-1", now=ctx.clock(), cfg=CFG, tz=TZ) == []


def test_a_recurring_broadcast_approved_just_after_its_time_does_not_play_late_today(ctx, sha):
    bid = create(ctx, sha, local_time="08:55")  # now is 09:00 local
    approve(ctx, bid)
    with ctx.db.session() as s:
        starts = [o.start_at for o in s.scalars(select(Occurrence))]
    assert starts and min(starts) > ctx.clock()


def test_a_speaker_added_to_a_targeted_zone_gets_the_coming_occurrences_in_its_plan(ctx, sha):
    bid = create(ctx, sha, target_kind="zones", target_zones=["ban-b"])
    approve(ctx, bid)
    with ctx.db.session() as s:
        plans.plans_to_publish(s, now=ctx.clock(), cfg=CFG, tz=TZ, force=False)
    with ctx.db.session() as s:
        registry.register_node(s, actor=SYSTEM, node_id="loa-4")
        registry.upsert_device(s, actor=SYSTEM, node_id="loa-4", code="loa", kind="speaker", zone="ban-b")
    with ctx.db.session() as s:
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
        published = plans.plans_to_publish(s, now=ctx.clock(), cfg=CFG, tz=TZ, force=False)
        out = {p.node_id: p.plan for p in published}
    assert list(out) == ["loa-4"] and len(out["loa-4"].items) == 3


def test_a_retired_speaker_is_no_longer_a_target(ctx):
    with ctx.db.session() as s:
        speakers(s, {"ban-a": ["loa-1", "loa-2"]})
        device = s.scalar(select(Device).where(Device.node_id == "loa-2", Device.kind == "speaker"))
        device.retired_at = ctx.clock()
    with ctx.db.session(write=False) as s:
        assert broadcasts.speaker_nodes(s, within=SYSTEM) == {"loa-1": {"ban-a"}}
