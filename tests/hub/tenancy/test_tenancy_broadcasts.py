"""Broadcasts, the media library, the zone rules and live announcements keep communes apart
(issue 20): a commune user reads and changes their commune's, plus the province broadcasts
aimed at them and the province library; a province user reads every commune's."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from thanthien.hub.db.models import Broadcast, BroadcastRule, Delivery, MediaItem
from thanthien.hub.roles import ADMIN, LEADER, OFFICER, SYSTEM, ActingUser
from thanthien.hub.services import (
    broadcasts,
    communes,
    deliveries,
    live,
    media_items,
    plans,
    registry,
    zone_rules,
)
from thanthien.hub.services.broadcasts import BroadcastSpec
from thanthien.hub.services.errors import Forbidden, Invalid, NotFound
from thanthien.hub.services.schedule import BroadcastSettings
from thanthien.hub.services.zone_rules import RuleSpec

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CFG = BroadcastSettings()
HOME = 1  # the commune migration 0018 made


@pytest.fixture
def towns(ctx):
    """Communes A (home) and B (xb), each with a zone and a speaker node, a file in each library
    and one in the province's; returns B's id."""
    now = ctx.clock()
    with ctx.db.session() as s:
        b = communes.create_commune(s, actor=SYSTEM, code="xb", name="Xã B", now=now)
        for commune, prefix in (("home", "xa"), ("xb", "xb")):
            registry.create_zone(s, actor=SYSTEM, code=f"{prefix}-ban", name=f"Bản {prefix}", commune=commune)
            registry.register_node(s, actor=SYSTEM, node_id=f"{prefix}-loa", name="Loa", commune=commune)
            registry.upsert_device(s, actor=SYSTEM, node_id=f"{prefix}-loa", code="loa", kind="speaker",
                                   zone=f"{prefix}-ban")
        for name, commune_id in (("xa", HOME), ("xb", b.id), ("tinh", None)):
            s.add(MediaItem(sha256=sha(name), title=f"Tệp {name}", duration_s=60.0, size_bytes=1000,
                            source_format="WAV", source_sha256=sha(name), created_at=now, created_by="x",
                            commune_id=commune_id))
        return b.id


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def user(role: str, commune_id: int | None, name: str = "") -> ActingUser:
    return ActingUser(name or f"{role}-{commune_id}", role, commune_id=commune_id)


def spec(media: str, **over) -> BroadcastSpec:
    values = {"title": "Bản tin", "media_sha256": media, "schedule_kind": "daily", "local_time": "07:00"}
    return BroadcastSpec(**{**values, **over})


def draft(ctx, actor: ActingUser, media: str, **over) -> int:
    with ctx.db.session() as s:
        return broadcasts.create_broadcast(s, spec=spec(media, **over), actor=actor, now=ctx.clock(), tz=TZ,
                                           cfg=CFG).id


def approved(ctx, actor: ActingUser, approver: ActingUser, media: str, **over) -> int:
    bid = draft(ctx, actor, media, **over)
    with ctx.db.session() as s:
        broadcasts.approve_broadcast(s, broadcast_id=bid, actor=approver, now=ctx.clock(), tz=TZ, cfg=CFG)
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
    return bid


# -- broadcasts ------------------------------------------------------------------------------
def test_a_commune_user_s_broadcast_belongs_to_their_commune(ctx, towns):
    bid = draft(ctx, user(OFFICER, towns), sha("xb"))
    with ctx.db.session(write=False) as s:
        assert s.get(Broadcast, bid).commune_id == towns


def test_a_province_user_s_broadcast_is_a_province_broadcast(ctx, towns):
    bid = draft(ctx, user(OFFICER, None), sha("tinh"))
    with ctx.db.session(write=False) as s:
        assert s.get(Broadcast, bid).commune_id is None


def test_a_commune_user_lists_only_their_commune_s_broadcasts(ctx, towns):
    mine, theirs = draft(ctx, user(OFFICER, HOME), sha("xa")), draft(ctx, user(OFFICER, towns), sha("xb"))
    with ctx.db.session(write=False) as s:
        assert [b.id for b in broadcasts.list_broadcasts(s, viewer=user(OFFICER, HOME))] == [mine]
        assert {b.id for b in broadcasts.list_broadcasts(s, viewer=SYSTEM)} == {mine, theirs}


def test_another_commune_s_broadcast_is_not_found_for_a_commune_user(ctx, towns):
    bid = draft(ctx, user(OFFICER, towns), sha("xb"))
    viewer = user(LEADER, HOME)
    with ctx.db.session() as s:
        for read in (broadcasts.get_broadcast, broadcasts.audit_log, deliveries.broadcast_reports):
            with pytest.raises(NotFound):
                read(s, viewer=viewer, broadcast_id=bid)
        with pytest.raises(NotFound):
            broadcasts.approve_broadcast(s, broadcast_id=bid, actor=viewer, now=ctx.clock(), tz=TZ, cfg=CFG)
        with pytest.raises(NotFound):
            broadcasts.archive_broadcast(s, broadcast_id=bid, actor=viewer, now=ctx.clock())
        with pytest.raises(NotFound):
            broadcasts.update_broadcast(s, broadcast_id=bid, spec=spec(sha("xa")), actor=viewer,
                                        now=ctx.clock(), tz=TZ, cfg=CFG)
        with pytest.raises(NotFound):
            broadcasts.grant_quiet_exception(s, broadcast_id=bid, actor=viewer, reason="Giao thừa",
                                             now=ctx.clock(), tz=TZ, cfg=CFG)
    with ctx.db.session(write=False) as s:
        assert s.get(Broadcast, bid).status == "draft"


def test_a_province_user_approves_a_commune_s_broadcast(ctx, towns):
    bid = approved(ctx, user(OFFICER, towns), user(LEADER, None), sha("xb"))
    with ctx.db.session(write=False) as s:
        assert broadcasts.get_broadcast(s, viewer=SYSTEM, broadcast_id=bid).status == "approved"


def test_a_commune_user_cannot_target_another_commune_s_zone(ctx, towns):
    with pytest.raises(Invalid, match="Không có khu vực phát: xb-ban"):
        draft(ctx, user(OFFICER, HOME), sha("xa"), target_kind="zones", target_zones=["xb-ban"])


def test_a_commune_user_cannot_target_another_commune_s_speaker(ctx, towns):
    with pytest.raises(Invalid, match="xb-loa"):
        draft(ctx, user(OFFICER, HOME), sha("xa"), target_kind="nodes", target_nodes=["xb-loa"])


def test_a_commune_user_cannot_play_another_commune_s_file(ctx, towns):
    with pytest.raises(Invalid, match="tệp âm thanh"):
        draft(ctx, user(OFFICER, HOME), sha("xb"))


def test_a_commune_user_plays_the_province_library_s_file(ctx, towns):
    bid = draft(ctx, user(OFFICER, HOME), sha("tinh"))
    with ctx.db.session(write=False) as s:
        assert s.get(Broadcast, bid).media_sha256 == sha("tinh")


def test_a_commune_broadcast_to_all_speakers_plays_on_its_commune_s_only(ctx, towns):
    bid = approved(ctx, user(OFFICER, HOME), user(LEADER, HOME), sha("xa"))
    with ctx.db.session(write=False) as s:
        nodes = set(s.scalars(select(Delivery.node_id).where(Delivery.occurrence_id.like(f"b{bid}-%"))))
    assert nodes == {"xa-loa"}


def test_a_province_broadcast_targets_zones_of_several_communes(ctx, towns):
    bid = approved(ctx, user(OFFICER, None), user(LEADER, None), sha("tinh"), priority="emergency",
                   target_kind="zones", target_zones=["xa-ban", "xb-ban"])
    with ctx.db.session(write=False) as s:
        nodes = set(s.scalars(select(Delivery.node_id).where(Delivery.occurrence_id.like(f"b{bid}-%"))))
    assert nodes == {"xa-loa", "xb-loa"}


def test_each_commune_sees_a_province_broadcast_that_targets_it(ctx, towns):
    bid = draft(ctx, user(OFFICER, None), sha("tinh"), target_kind="zones", target_zones=["xa-ban", "xb-ban"])
    with ctx.db.session(write=False) as s:
        for commune_id in (HOME, towns):
            assert [b.id for b in broadcasts.list_broadcasts(s, viewer=user(OFFICER, commune_id))] == [bid]


def test_a_province_broadcast_that_targets_another_commune_only_is_not_seen(ctx, towns):
    bid = draft(ctx, user(OFFICER, None), sha("tinh"), target_kind="zones", target_zones=["xb-ban"])
    with ctx.db.session(write=False) as s:
        assert broadcasts.list_broadcasts(s, viewer=user(OFFICER, HOME)) == []
        with pytest.raises(NotFound):
            broadcasts.get_broadcast(s, viewer=user(OFFICER, HOME), broadcast_id=bid)


def test_a_commune_user_cannot_change_a_province_broadcast(ctx, towns):
    bid = draft(ctx, user(OFFICER, None), sha("tinh"))
    with ctx.db.session() as s, pytest.raises(Forbidden, match="cấp tỉnh"):
        broadcasts.archive_broadcast(s, broadcast_id=bid, actor=user(OFFICER, HOME), now=ctx.clock())


def test_a_province_broadcast_s_report_shows_a_commune_only_its_speakers(ctx, towns):
    bid = approved(ctx, user(OFFICER, None), user(LEADER, None), sha("tinh"))
    with ctx.db.session(write=False) as s:
        (report, *_) = deliveries.broadcast_reports(s, viewer=user(OFFICER, HOME), broadcast_id=bid)
        assert [d.node_id for d in report.deliveries] == ["xa-loa"]
        one = deliveries.report(s, viewer=user(OFFICER, towns), occurrence_id=report.occurrence.id)
        assert [d.node_id for d in one.deliveries] == ["xb-loa"]
        every = deliveries.report(s, viewer=SYSTEM, occurrence_id=report.occurrence.id)
        assert [d.node_id for d in every.deliveries] == ["xa-loa", "xb-loa"]


def test_another_commune_s_occurrence_report_is_not_found(ctx, towns):
    bid = approved(ctx, user(OFFICER, towns), user(LEADER, towns), sha("xb"))
    with ctx.db.session(write=False) as s:
        (occurrence, _), *_ = plans.upcoming(s, viewer=SYSTEM, start=ctx.clock())
        assert occurrence.broadcast_id == bid
        with pytest.raises(NotFound):
            deliveries.report(s, viewer=user(OFFICER, HOME), occurrence_id=occurrence.id)


def test_the_calendar_of_a_commune_holds_its_broadcasts_and_the_province_s_aimed_at_it(ctx, towns):
    mine = approved(ctx, user(OFFICER, HOME), user(LEADER, HOME), sha("xa"))
    approved(ctx, user(OFFICER, towns), user(LEADER, towns), sha("xb"))
    province = approved(ctx, user(OFFICER, None), user(LEADER, None), sha("tinh"), local_time="08:00")
    start = ctx.clock()
    with ctx.db.session(write=False) as s:
        viewer = user(OFFICER, HOME)
        assert {o.broadcast_id for o, _ in plans.upcoming(s, viewer=viewer, start=start)} == {mine, province}
        assert {o.broadcast_id: n for o, n in plans.upcoming(s, viewer=viewer, start=start)}[province] == 1
        week = plans.calendar(s, viewer=viewer, start=start, end=start + timedelta(days=7), tz=TZ)
        assert {e.broadcast_id for e in week} == {mine, province}


def test_a_node_s_plan_holds_the_province_broadcasts_aimed_at_it(ctx, towns):
    province = approved(ctx, user(OFFICER, None), user(LEADER, None), sha("tinh"))
    theirs = approved(ctx, user(OFFICER, towns), user(LEADER, towns), sha("xb"), local_time="08:00")
    with ctx.db.session(write=False) as s:
        items = plans.node_plan_items(s, node_id="xa-loa", now=ctx.clock(), cfg=CFG, tz=TZ)
    assert {i.broadcast_id for i in items} == {province}
    assert theirs not in {i.broadcast_id for i in items}


def test_a_commune_user_s_play_now_and_stop_reach_their_speakers_only(ctx, towns):
    with ctx.db.session() as s:
        p = plans.create_play_now(s, media_sha256=sha("xa"), title="Khẩn", priority="emergency", volume=100,
                                  target_kind="all", target_zones=[], target_nodes=[], username="lanh-dao",
                                  now=ctx.clock(), tz=TZ, cfg=CFG, commune_id=HOME)
        assert p.targets == ["xa-loa"] and p.broadcast.commune_id == HOME
        assert plans.stop_targets(s, actor=user(LEADER, HOME), target_kind="all", target_zones=[],
                                  target_nodes=[]) == ["xa-loa"]
        with pytest.raises(Invalid, match="Không có cụm loa"):
            plans.stop_targets(s, actor=user(LEADER, HOME), target_kind="zones", target_zones=["xb-ban"],
                               target_nodes=[])


def test_a_commune_user_speaks_live_to_their_speakers_only(ctx, towns):
    with ctx.db.session() as s:
        opened = live.open_live(s, actor=user(OFFICER, HOME), lib=ctx.media, now=ctx.clock(),
                                request=live.LiveRequest(target_kind="all"))
        assert opened.targets == ["xa-loa"]
        assert [b.id for b in live.recent(s, viewer=user(OFFICER, towns))] == []
        assert [b.id for b in live.recent(s, viewer=user(OFFICER, HOME))] == [opened.broadcast_id]


# -- the media library ------------------------------------------------------------------------
def test_a_commune_user_lists_their_commune_s_files_and_the_province_s(ctx, towns):
    with ctx.db.session(write=False) as s:
        assert {m.sha256 for m in media_items.list_media(s, viewer=user(OFFICER, HOME))} == {sha("xa"),
                                                                                            sha("tinh")}
        assert len(media_items.list_media(s, viewer=SYSTEM)) == 3


def test_another_commune_s_file_is_not_found_for_a_commune_user(ctx, towns):
    with ctx.db.session() as s:
        with pytest.raises(NotFound):
            media_items.get_media(s, viewer=user(OFFICER, HOME), sha256=sha("xb"))
        with pytest.raises(NotFound):
            media_items.delete_media(s, actor=user(OFFICER, HOME), lib=ctx.media, sha256=sha("xb"))
        with pytest.raises(NotFound):
            media_items.record_listened(s, actor=user(LEADER, HOME), sha256=sha("xb"), now=ctx.clock())
    with ctx.db.session(write=False) as s:
        assert s.get(MediaItem, sha("xb")) is not None


def test_a_commune_user_cannot_delete_a_province_file(ctx, towns):
    with ctx.db.session() as s, pytest.raises(Forbidden, match="cấp tỉnh"):
        media_items.delete_media(s, actor=user(OFFICER, HOME), lib=ctx.media, sha256=sha("tinh"))


def test_a_commune_user_s_upload_belongs_to_their_commune(ctx, towns):
    with ctx.db.session() as s:
        item = media_items.add_upload(s, lib=ctx.media, data=live.pcm_wav(b"\x10\x02" * 16000),
                                      filename="a.wav", title="Thông báo", username="can-bo", commune_id=HOME,
                                      now=ctx.clock())
        assert item.commune_id == HOME


def test_the_same_file_uploaded_by_another_commune_moves_to_the_province_library(ctx, towns):
    data = live.pcm_wav(b"\x10\x02" * 16000)
    with ctx.db.session() as s:
        first = media_items.add_upload(s, lib=ctx.media, data=data, filename="a.wav", title="Của A",
                                       username="can-bo-a", commune_id=HOME, now=ctx.clock()).sha256
    with ctx.db.session() as s:
        again = media_items.add_upload(s, lib=ctx.media, data=data, filename="b.wav", title="Của B",
                                       username="can-bo-b", commune_id=towns, now=ctx.clock())
        assert again.sha256 == first and again.commune_id is None
        assert media_items.get_media(s, viewer=user(OFFICER, towns), sha256=first).sha256 == first


# -- zone rules and the dictionary ----------------------------------------------------------------
def set_rule(ctx, actor, where_of, minutes: int):
    with ctx.db.session() as s:
        return zone_rules.set_rule(s, actor=actor, where=where_of(s), spec=RuleSpec(daily_minutes=minutes),
                                   now=ctx.clock(), tz=TZ, cfg=CFG)


def test_each_commune_has_its_own_commune_rule(ctx, towns):
    set_rule(ctx, user(ADMIN, HOME), lambda s: zone_rules.scope(s, viewer=user(ADMIN, HOME)), 30)
    set_rule(ctx, user(ADMIN, towns), lambda s: zone_rules.scope(s, viewer=user(ADMIN, towns)), 90)
    with ctx.db.session(write=False) as s:
        rules = zone_rules.book(s)
        assert rules.for_node("xa-loa").daily_minutes == 30
        assert rules.for_node("xb-loa").daily_minutes == 90
        assert zone_rules.get_rule(s, zone_rules.scope(s, viewer=user(ADMIN, towns))).daily_minutes == 90
        keys = set(s.scalars(select(BroadcastRule.key)))
    assert keys == {f"commune:{HOME}", f"commune:{towns}"}


def test_the_old_commune_rule_is_commune_one_s(ctx, towns):
    with ctx.db.session() as s:
        s.add(BroadcastRule(key="commune", daily_minutes=45, updated_at=ctx.clock(), updated_by="x",
                            commune_id=HOME))
    with ctx.db.session(write=False) as s:
        assert zone_rules.book(s).for_node("xa-loa").daily_minutes == 45
        assert zone_rules.book(s).for_node("xb-loa").daily_minutes is None
    set_rule(ctx, SYSTEM, lambda s: zone_rules.scope(s, viewer=SYSTEM, commune="home"), 60)
    with ctx.db.session(write=False) as s:
        assert [(r.key, r.daily_minutes) for r in s.scalars(select(BroadcastRule))] == [("commune", 60)]


def test_another_commune_s_zone_and_speaker_rules_are_not_found(ctx, towns):
    with ctx.db.session(write=False) as s:
        with pytest.raises(NotFound):
            zone_rules.scope(s, viewer=user(ADMIN, HOME), zone="xb-ban")
        with pytest.raises(NotFound):
            zone_rules.scope(s, viewer=user(ADMIN, HOME), node="xb-loa")
        with pytest.raises(NotFound):
            zone_rules.scope(s, viewer=user(ADMIN, HOME), commune="xb")


def test_a_province_admin_sets_a_commune_s_zone_rule(ctx, towns):
    set_rule(ctx, SYSTEM, lambda s: zone_rules.scope(s, viewer=SYSTEM, zone="xb-ban"), 20)
    with ctx.db.session(write=False) as s:
        assert zone_rules.book(s).for_node("xb-loa").daily_minutes == 20
        assert s.scalar(select(BroadcastRule.commune_id)) == towns


def test_zone_minutes_show_a_commune_user_their_zones_only(ctx, towns):
    start = ctx.clock()
    with ctx.db.session(write=False) as s:
        rows = zone_rules.zone_minutes(s, viewer=user(OFFICER, HOME), start=start,
                                       end=start + timedelta(days=1), tz=TZ)
    assert [r.zone_code for r in rows] == ["xa-ban"]


def test_only_a_province_admin_edits_the_pronunciation_dictionary(ctx, towns):
    with ctx.db.session() as s:
        with pytest.raises(Forbidden):
            media_items.set_lexicon_entry(s, actor=user(ADMIN, HOME), term="HTX", spoken="hợp tác xã",
                                          now=ctx.clock())
        media_items.set_lexicon_entry(s, actor=SYSTEM, term="HTX", spoken="hợp tác xã", now=ctx.clock())
        with pytest.raises(Forbidden):
            media_items.delete_lexicon_entry(s, actor=user(ADMIN, towns), term="HTX", now=ctx.clock())
        assert [e.term for e in media_items.list_lexicon(s)] == ["HTX"]
