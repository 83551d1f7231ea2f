"""Broadcast rules by zone and speaker (SQLite and PostgreSQL): allowed slots, daily minutes
and the volume profile, refused with the reason (emergencies excepted), inherited speaker ->
zone -> commune, re-checked when a rule changes, and the volume in each node's plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from broadcasts.support import APPROVER, DRAFTER, media_row, speakers, spec
from thanthien.hub.db.models import AuditEntry, Broadcast, BroadcastAudit
from thanthien.hub.roles import OFFICER, SYSTEM, ActingUser
from thanthien.hub.services import broadcasts, plans, zone_rules
from thanthien.hub.services.errors import Forbidden, Invalid
from thanthien.hub.services.schedule import BroadcastSettings
from thanthien.hub.services.zone_rules import RuleSpec, Slot, VolumeBand

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CFG = BroadcastSettings(rrule_check_days=30)
ZONES = {"ban-a": ["loa-1", "loa-2"], "ban-b": ["loa-3"]}
DA_NANG = RuleSpec(slots=[Slot(start="05:30", minutes=60), Slot(start="17:00", minutes=60)])
"""Two 60-minute slots from 05:30 and 17:00, as a ward in Đà Nẵng reads Nghị định 49/2024."""


@pytest.fixture
def sha(ctx):
    with ctx.db.session() as s:
        speakers(s, ZONES)
        return media_row(s, ctx.clock(), duration_s=600.0)  # a 10-minute bulletin


def set_rule(ctx, rule: RuleSpec, **where):
    with ctx.db.session() as s:
        return zone_rules.set_rule(s, actor=SYSTEM, where=zone_rules.scope(s, viewer=SYSTEM, **where),
                                   spec=rule,
                                   now=ctx.clock(), tz=TZ, cfg=CFG)


def create(ctx, sha, **over):
    with ctx.db.session() as s:
        return broadcasts.create_broadcast(s, spec=spec(sha, **over), actor=DRAFTER, now=ctx.clock(), tz=TZ,
                                           cfg=CFG).id


def approve(ctx, bid):
    with ctx.db.session() as s:
        broadcasts.approve_broadcast(s, broadcast_id=bid, actor=APPROVER, now=ctx.clock(), tz=TZ, cfg=CFG)


def count(ctx, model) -> int:
    with ctx.db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_schedule_outside_the_zones_slots_is_refused_with_the_slots_and_nothing_is_stored(ctx, sha):
    set_rule(ctx, DA_NANG, zone="ban-a")
    with pytest.raises(Invalid) as err:
        create(ctx, sha, local_time="07:00", target_kind="zones", target_zones=["ban-a"])
    assert "ngoài khung giờ được phép của khu vực Bản ban-a" in str(err.value)
    assert "07:00 03/03/2026" in str(err.value) and "05:30–06:30, 17:00–18:00" in str(err.value)
    assert count(ctx, Broadcast) == count(ctx, BroadcastAudit) == 0


def test_a_schedule_inside_a_slot_is_accepted(ctx, sha):
    set_rule(ctx, DA_NANG, zone="ban-a")
    assert create(ctx, sha, local_time="17:30", target_kind="zones", target_zones=["ban-a"]) > 0


def test_a_broadcast_that_runs_past_the_end_of_its_slot_is_refused(ctx, sha):
    set_rule(ctx, DA_NANG, zone="ban-a")
    with pytest.raises(Invalid, match="17:55"):
        create(ctx, sha, local_time="17:55", target_kind="zones", target_zones=["ban-a"])  # ends 18:05


def test_a_zone_without_rules_is_not_limited_by_another_zones_slots(ctx, sha):
    set_rule(ctx, DA_NANG, zone="ban-a")
    assert create(ctx, sha, local_time="07:00", target_kind="zones", target_zones=["ban-b"]) > 0


def test_an_emergency_outside_the_slots_is_accepted(ctx, sha):
    set_rule(ctx, DA_NANG)  # the commune's rule: every zone
    assert create(ctx, sha, local_time="07:00", priority="emergency") > 0


def test_the_communes_slots_apply_to_a_zone_that_sets_none(ctx, sha):
    set_rule(ctx, DA_NANG)
    set_rule(ctx, RuleSpec(daily_minutes=120), zone="ban-b")  # its own cap, the commune's slots
    with pytest.raises(Invalid, match="khung giờ được phép của toàn xã"):
        create(ctx, sha, local_time="07:00", target_kind="zones", target_zones=["ban-b"])


def test_the_daily_minutes_cap_counts_the_approved_broadcasts_and_refuses_the_one_over(ctx, sha):
    set_rule(ctx, RuleSpec(daily_minutes=25), zone="ban-a")
    approve(ctx, create(ctx, sha, local_time="06:00"))
    approve(ctx, create(ctx, sha, local_time="07:00", title="Bản tin trưa"))
    with pytest.raises(Invalid) as err:
        create(ctx, sha, local_time="17:00", title="Bản tin chiều")
    assert "Vượt số phút phát mỗi ngày của khu vực Bản ban-a" in str(err.value)
    assert "sẽ có 30 phút (đã có 20 phút, bản tin này 10 phút; tối đa 25 phút)" in str(err.value)


def test_drafts_do_not_count_towards_the_daily_cap(ctx, sha):
    set_rule(ctx, RuleSpec(daily_minutes=15), zone="ban-a")
    create(ctx, sha, local_time="06:00")
    assert create(ctx, sha, local_time="07:00") > 0


def test_approval_checks_the_cap_again_against_what_was_approved_since(ctx, sha):
    set_rule(ctx, RuleSpec(daily_minutes=15), zone="ban-a")
    first, second = create(ctx, sha, local_time="06:00"), create(ctx, sha, local_time="07:00")
    approve(ctx, first)
    with pytest.raises(Invalid, match="Vượt số phút phát mỗi ngày"):
        approve(ctx, second)


def test_an_edit_does_not_count_the_broadcast_it_replaces(ctx, sha):
    set_rule(ctx, RuleSpec(daily_minutes=10), zone="ban-a")
    bid = create(ctx, sha, local_time="06:00")
    approve(ctx, bid)
    with ctx.db.session() as s:
        broadcasts.update_broadcast(s, broadcast_id=bid, spec=spec(sha, local_time="06:30"), actor=DRAFTER,
                                    now=ctx.clock(), tz=TZ, cfg=CFG)
    approve(ctx, bid)  # its own 10 earlier minutes are not counted against the cap of 10
    with ctx.db.session(write=False) as s:
        b = s.get(Broadcast, bid)
        assert (b.status, b.local_time) == ("approved", "06:30")


def test_a_speaker_override_narrows_its_zones_rule_for_that_speaker_only(ctx, sha):
    set_rule(ctx, RuleSpec(slots=[Slot(start="17:00", minutes=60)]), node="loa-2")  # near the school
    with pytest.raises(Invalid, match="khung giờ được phép của cụm loa"):
        create(ctx, sha, local_time="07:00", target_kind="zones", target_zones=["ban-a"])
    assert create(ctx, sha, local_time="07:00", target_kind="nodes", target_nodes=["loa-1"]) > 0


def test_a_stricter_rule_sends_the_approved_broadcasts_that_break_it_back_to_draft(ctx, sha):
    bid = create(ctx, sha, local_time="07:00")
    approve(ctx, bid)
    change = set_rule(ctx, DA_NANG, zone="ban-b")
    assert [i for i, _, _ in change.back_to_draft] == [bid]
    with ctx.db.session() as s:
        b = s.get(Broadcast, bid)
        assert (b.status, b.approved_by) == ("draft", None)
        last = s.scalars(select(BroadcastAudit).where(BroadcastAudit.broadcast_id == bid)
                         .order_by(BroadcastAudit.id.desc())).first()
        assert last.action == "rules_changed" and "khung giờ" in last.details["reason"]
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "broadcast.rules")).one()
        assert entry.details["back_to_draft"] == [bid]


def test_only_an_admin_sets_a_rule(ctx, sha):
    with ctx.db.session() as s, pytest.raises(Forbidden):
        zone_rules.set_rule(s, actor=ActingUser("can-bo", OFFICER), where=zone_rules.scope(s, viewer=SYSTEM),
                            spec=DA_NANG,
                            now=ctx.clock(), tz=TZ, cfg=CFG)


def test_a_non_emergency_play_now_outside_the_slots_is_refused(ctx, sha):
    set_rule(ctx, DA_NANG)
    with ctx.db.session() as s, pytest.raises(Invalid, match="ngoài khung giờ"):
        plans.create_play_now(s, media_sha256=sha, title="Thông báo", priority="priority", volume=100,
                              target_kind="all", target_zones=[], target_nodes=[], username="lanh-dao",
                              now=ctx.clock(), tz=TZ, cfg=CFG)
    assert count(ctx, Broadcast) == 0


def test_each_nodes_plan_plays_at_the_volume_its_profile_allows_at_that_hour(ctx, sha):
    early = RuleSpec(volume_profile=[VolumeBand(start="05:00", end="06:30", volume=40)])
    set_rule(ctx, early, zone="ban-a")
    set_rule(ctx, RuleSpec(volume_profile=[VolumeBand(start="05:00", end="07:00", volume=25)]), node="loa-2")
    approve(ctx, create(ctx, sha, local_time="06:00", volume=80))
    approve(ctx, create(ctx, sha, local_time="17:00", volume=80, title="Bản tin chiều"))
    with ctx.db.session() as s:
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
        published = plans.plans_to_publish(s, now=ctx.clock(), cfg=CFG, tz=TZ, force=True)
    by_hour = {p.node_id: {i.start_at.astimezone(TZ).strftime("%H:%M"): i.volume for i in p.plan.items}
               for p in published}
    assert by_hour == {"loa-1": {"06:00": 40, "17:00": 80}, "loa-2": {"06:00": 25, "17:00": 80},
                       "loa-3": {"06:00": 80, "17:00": 80}}


def test_an_emergency_keeps_its_own_volume_inside_a_quiet_band(ctx, sha):
    set_rule(ctx, RuleSpec(volume_profile=[VolumeBand(start="00:00", end="23:59", volume=30)]))
    approve(ctx, create(ctx, sha, local_time="06:00", volume=90, priority="emergency"))
    with ctx.db.session() as s:
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
        items = plans.node_plan_items(s, node_id="loa-1", now=ctx.clock(), cfg=CFG, tz=TZ)
    assert {i.volume for i in items} == {90}


def test_a_broadcast_overlapping_two_bands_plays_at_the_quieter(ctx, sha):
    bands = [VolumeBand(start="05:00", end="06:05", volume=70),
             VolumeBand(start="06:05", end="07:00", volume=50)]
    rule = zone_rules.Effective(volume_profile=tuple(bands))
    at = datetime(2026, 3, 3, 6, 0, tzinfo=TZ).astimezone(UTC)
    assert zone_rules.volume_for(rule, volume=100, priority="normal", at=at, duration_s=600, tz=TZ) == 50
    assert zone_rules.volume_for(rule, volume=100, priority="normal", at=at, duration_s=120, tz=TZ) == 70


def test_a_slot_across_midnight_allows_a_broadcast_after_midnight():
    slots = [Slot(start="23:30", minutes=60)]
    at = datetime(2026, 3, 3, 0, 10, tzinfo=TZ)
    assert zone_rules.in_slots(slots, at, 600, TZ)
    assert not zone_rules.in_slots(slots, at + timedelta(minutes=30), 600, TZ)


def test_the_calendar_counts_each_zones_minutes_per_day_with_its_cap(ctx, sha):
    set_rule(ctx, RuleSpec(daily_minutes=60), zone="ban-a")
    approve(ctx, create(ctx, sha, local_time="06:00", target_kind="zones", target_zones=["ban-a"]))
    approve(ctx, create(ctx, sha, local_time="17:00"))
    create(ctx, sha, local_time="18:00")  # a draft: not counted
    day = datetime(2026, 3, 3, tzinfo=TZ)
    with ctx.db.session() as s:
        found = zone_rules.zone_minutes(s, viewer=SYSTEM, start=day, end=day + timedelta(days=1), tz=TZ)
    rows = {r.zone_code: r for r in found}
    assert rows["ban-a"].minutes == {day.date(): 20.0} and rows["ban-a"].daily_minutes == 60
    assert rows["ban-b"].minutes == {day.date(): 10.0} and rows["ban-b"].daily_minutes is None


def test_a_band_that_starts_and_ends_at_once_is_refused():
    with pytest.raises(ValueError, match="same time"):
        RuleSpec(volume_profile=[{"start": "06:00", "end": "06:00", "volume": 50}])


def test_the_form_text_of_bands_and_slots_is_read_back():
    assert zone_rules.bands_text(zone_rules.parse_bands("05:30-06:30 60, 21:00-22:00 40%")) == \
        "05:30-06:30 60, 21:00-22:00 40"
    assert zone_rules.slots_form_text(zone_rules.parse_slots("05:30 60\n17:00 60")) == "05:30 60, 17:00 60"
    with pytest.raises(Invalid, match="05:30 60"):
        zone_rules.parse_slots("sáng sớm")
