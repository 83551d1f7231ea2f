"""Communes as tenants for the nodes' health and operation (issue 20): alarms, health counts,
cameras, telemetry, enrollment and retirement, roll-outs, fault reports, the audit log, dead
letters and the health page's live stream reach only the viewer's commune; the province's
users reach every commune."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.tenancy import seed_devices, seed_registry, walk
from support import bearer, ui_login
from thanthien.hub.app import create_app
from thanthien.hub.db.models import Alarm, Commune, FaultReport, Node, RolloutNode
from thanthien.hub.roles import SYSTEM, ActingUser
from thanthien.hub.services import (
    alarms,
    audit,
    cameras,
    communes,
    deadletters,
    enrollment,
    fault_reports,
    health,
    releases,
    users,
)
from thanthien.hub.services.errors import Forbidden, NotFound
from thanthien.hub.settings import EnrollmentSection
from thanthien.hub.web.auth import COOKIE, CSRF_FIELD, csrf_for
from thanthien.hub.web.routes import events

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@dataclass
class Two:
    a: dict[str, Any]
    b: dict[str, Any]
    a_id: int
    b_id: int

    def user(self, side: str, role: str) -> ActingUser:
        ids, commune = (self.a, self.a_id) if side == "a" else (self.b, self.b_id)
        return ActingUser(username=ids["usernames"][role], role=role, id=0, commune_id=commune)


PROVINCE_IT = ActingUser(username="tinh-it", role="it", id=0)
PROVINCE_ADMIN = ActingUser(username="tinh-admin", role="admin", id=0)


@pytest.fixture
def two(ctx) -> Two:
    now = ctx.clock()
    with ctx.db.session() as s:
        s.scalar(select(Commune).where(Commune.code == "home")).name = f"Thị trấn {walk.MARKER_A}"
        communes.create_commune(s, actor=SYSTEM, code="xb", name=f"Xã {walk.MARKER_B}", now=now)
        sides = {}
        for commune, prefix, marker in (("home", "xa", walk.MARKER_A), ("xb", "xb", walk.MARKER_B)):
            ids = seed_registry.seed(s, commune=commune, prefix=prefix, marker=marker, now=now)
            ids.update(seed_devices.seed(s, commune=commune, prefix=prefix, marker=marker, now=now,
                                         registry=ids))
            sides[prefix] = ids
        ids_of = {c.code: c.id for c in s.scalars(select(Commune))}
    return Two(a=sides["xa"], b=sides["xb"], a_id=ids_of["home"], b_id=ids_of["xb"])


def _alarm(ctx, alarm_id: int) -> Alarm:
    with ctx.db.session(write=False) as s:
        row = s.get(Alarm, alarm_id)
        s.expunge(row)
        return row


# -- alarms ---------------------------------------------------------------------------------
def test_a_node_s_alarm_belongs_to_the_node_s_commune(ctx, two):
    assert _alarm(ctx, two.b["alarm_id"]).commune_id == two.b_id


def test_a_camera_s_alarm_belongs_to_its_node_s_commune(ctx, two):
    with ctx.db.session(write=False) as s:
        row = s.scalar(select(Alarm).where(Alarm.subject == f"{two.b['box_node']}/{two.b['camera']}"))
        assert row.kind == "camera_down" and row.commune_id == two.b_id


def test_a_counter_s_spike_alarm_belongs_to_the_counter_s_commune(ctx, two):
    with ctx.db.session() as s:
        change = alarms.raise_alarm(s, kind="negative_spike", subject=two.b["counter"], severity="major",
                                    message="đột biến", now=ctx.clock(), notify=False)
        assert change.alarm.commune_id == two.b_id


def test_a_missed_province_broadcast_s_alarm_belongs_to_the_commune_of_the_speakers_that_missed_it(ctx, two):
    with ctx.db.session() as s:
        change = alarms.raise_alarm(s, kind="broadcast_missed", subject="occ-tinh", severity="major",
                                    message="không phát", now=ctx.clock(), notify=False,
                                    details={"nodes": [two.b["speaker_node"]]})
        assert change.alarm.commune_id == two.b_id


def test_an_alarm_of_the_hub_itself_belongs_to_no_commune_and_only_the_province_sees_it(ctx, two):
    with ctx.db.session() as s:
        alarm = alarms.raise_alarm(s, kind="node_unregistered", subject="la-la", severity="warning",
                                   message="lạ", now=ctx.clock(), notify=False).alarm
        s.flush()
        assert alarm.commune_id is None
        assert alarm.id not in {x.id for x in alarms.alarms_for(s, viewer=two.user("a", "it"))}
        assert alarm.id in {x.id for x in alarms.alarms_for(s, viewer=PROVINCE_IT)}


def test_a_commune_user_lists_only_their_commune_s_alarms(ctx, two):
    with ctx.db.session(write=False) as s:
        seen = {a.id for a in alarms.alarms_for(s, viewer=two.user("a", "it"))}
        assert two.a["alarm_id"] in seen and two.b["alarm_id"] not in seen


def test_a_province_user_lists_every_commune_s_alarms(ctx, two):
    with ctx.db.session(write=False) as s:
        seen = {a.id for a in alarms.alarms_for(s, viewer=PROVINCE_IT)}
        assert {two.a["alarm_id"], two.b["alarm_id"]} <= seen


def test_a_commune_user_cannot_acknowledge_another_commune_s_alarm(ctx, two):
    with ctx.db.session() as s, pytest.raises(NotFound):
        alarms.acknowledge_alarm(s, alarm_id=two.b["alarm_id"], actor=two.user("a", "it"), now=ctx.clock(),
                                 notify=False)
    assert _alarm(ctx, two.b["alarm_id"]).acknowledged_at is None


def test_a_commune_user_acknowledges_their_own_commune_s_alarm(ctx, two):
    with ctx.db.session() as s:
        alarms.acknowledge_alarm(s, alarm_id=two.a["alarm_id"], actor=two.user("a", "it"), now=ctx.clock(),
                                 notify=False)
    assert _alarm(ctx, two.a["alarm_id"]).acknowledged_by == "xa-it"


def test_active_alarm_counts_are_of_the_viewer_s_commune(ctx, two):
    with ctx.db.session(write=False) as s:
        mine = sum(alarms.active_counts(s, viewer=two.user("a", "it")).values())
        every = sum(alarms.active_counts(s, viewer=PROVINCE_IT).values())
    assert mine == 3 and every == 6  # each commune: its speaker offline, its box's disk, its camera


def test_node_state_counts_are_of_the_viewer_s_commune(ctx, two):
    with ctx.db.session(write=False) as s:
        assert sum(health.state_counts(s, viewer=two.user("a", "it")).values()) == 2
        assert sum(health.state_counts(s, viewer=PROVINCE_IT).values()) == 4


# -- cameras, telemetry, dead letters -------------------------------------------------------
def test_a_commune_user_lists_only_their_commune_s_cameras(ctx, two):
    with ctx.db.session(write=False) as s:
        assert {c.node_id for c in cameras.list_status(s, viewer=two.user("a", "it"))} == {two.a["box_node"]}


def test_another_commune_s_node_telemetry_is_not_found(ctx, two):
    now = ctx.clock()
    with ctx.db.session(write=False) as s, pytest.raises(NotFound):
        health.telemetry_history(s, viewer=two.user("a", "it"), node_id=two.b["box_node"],
                                 start=now - timedelta(days=1), end=now)


def test_dead_letters_are_the_province_s(ctx, two):
    with ctx.db.session(write=False) as s:
        with pytest.raises(Forbidden):
            deadletters.list_dead_letters(s, viewer=two.user("a", "it"))
        assert len(deadletters.list_dead_letters(s, viewer=PROVINCE_IT)) == 2


# -- enrollment and retirement --------------------------------------------------------------
def test_a_commune_user_cannot_retire_another_commune_s_node(ctx, two):
    with ctx.db.session() as s, pytest.raises(NotFound):
        enrollment.retire_node(s, actor=two.user("a", "it"), node_id=two.b["speaker_node"], now=ctx.clock())
    with ctx.db.session(write=False) as s:
        assert s.get(Node, two.b["speaker_node"]).retired_at is None


def test_the_retire_api_answers_404_for_another_commune_s_node(ctx, two):
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx)) as client:
        headers = bearer(client, "xa-admin", seed_registry.PASSWORD)
        answer = client.post(f"/api/v1/nodes/{two.b['speaker_node']}/retire", headers=headers)
    assert answer.status_code == 404


def test_a_commune_user_cannot_issue_an_enrollment_code_for_another_commune_s_node(ctx, two):
    with ctx.db.session() as s, pytest.raises(NotFound):
        enrollment.issue_code(s, actor=two.user("a", "it"), node_id=two.b["speaker_node"], now=ctx.clock(),
                              settings=EnrollmentSection())


def test_a_node_a_commune_user_adds_belongs_to_their_commune(ctx, two):
    with ctx.db.session() as s:
        enrollment.add_node(s, actor=two.user("b", "it"), node_id="xb-moi", name="Loa mới", now=ctx.clock(),
                            settings=EnrollmentSection(), zone=two.b["zone"])
    with ctx.db.session(write=False) as s:
        assert s.get(Node, "xb-moi").commune_id == two.b_id


def test_a_node_a_province_user_adds_for_a_zone_belongs_to_the_zone_s_commune(ctx, two):
    with ctx.db.session() as s:
        enrollment.add_node(s, actor=PROVINCE_IT, node_id="xb-moi-2", name="Loa mới", now=ctx.clock(),
                            settings=EnrollmentSection(), zone=two.b["zone"])
    with ctx.db.session(write=False) as s:
        assert s.get(Node, "xb-moi-2").commune_id == two.b_id


def test_a_commune_user_cannot_add_a_speaker_for_another_commune_s_zone(ctx, two):
    with ctx.db.session() as s, pytest.raises(NotFound):
        enrollment.add_node(s, actor=two.user("a", "it"), node_id="xa-moi", name="Loa mới", now=ctx.clock(),
                            settings=EnrollmentSection(), zone=two.b["zone"])


# -- releases and roll-outs -----------------------------------------------------------------
def test_a_commune_user_does_not_see_another_commune_s_roll_out(ctx, two):
    with ctx.db.session(write=False) as s:
        listed = {r.id for r in releases.list_rollouts(s, viewer=two.user("a", "it"))}
        assert listed == {two.a["rollout_id"]}
        with pytest.raises(NotFound):
            releases.view(s, viewer=two.user("a", "it"), rollout_id=two.b["rollout_id"])


def test_a_commune_user_cannot_pause_another_commune_s_roll_out(ctx, two):
    with ctx.db.session() as s, pytest.raises(NotFound):
        releases.pause(s, actor=two.user("a", "it"), rollout_id=two.b["rollout_id"], now=ctx.clock())


def test_a_commune_user_pauses_their_own_commune_s_roll_out(ctx, two):
    with ctx.db.session() as s:
        assert releases.pause(s, actor=two.user("a", "it"), rollout_id=two.a["rollout_id"],
                              now=ctx.clock()).state == "paused"


def test_a_commune_user_s_fleet_roll_out_reaches_their_commune_s_nodes_only(ctx, two):
    with ctx.db.session() as s:
        for rollout_id in (two.a["rollout_id"], two.b["rollout_id"]):
            releases.cancel(s, actor=PROVINCE_IT, rollout_id=rollout_id, now=ctx.clock())
        rollout = releases.create_rollout(s, actor=two.user("a", "it"), now=ctx.clock(),
                                          request=releases.RolloutRequest(version=two.a["version"],
                                                                          target="fleet", stages=[100]))
        s.flush()
        members = set(s.scalars(select(RolloutNode.node_id).where(RolloutNode.rollout_id == rollout.id)))
    assert members == {two.a["speaker_node"], two.a["box_node"]}


def test_a_commune_user_cannot_roll_out_to_another_commune_s_node(ctx, two):
    request = releases.RolloutRequest(version=two.a["version"], target="nodes", nodes=[two.b["speaker_node"]],
                                      stages=[100])
    with ctx.db.session() as s, pytest.raises(NotFound):
        releases.create_rollout(s, actor=two.user("a", "it"), now=ctx.clock(), request=request)


def test_a_roll_out_across_communes_shows_a_commune_user_their_nodes_and_is_not_theirs_to_change(ctx, two):
    with ctx.db.session() as s:
        for rollout_id in (two.a["rollout_id"], two.b["rollout_id"]):
            releases.cancel(s, actor=PROVINCE_IT, rollout_id=rollout_id, now=ctx.clock())
        request = releases.RolloutRequest(version=two.a["version"], target="nodes", stages=[100],
                                          nodes=[two.a["speaker_node"], two.b["speaker_node"]])
        both = releases.create_rollout(s, actor=PROVINCE_IT, now=ctx.clock(), request=request).id
    with ctx.db.session() as s:
        view = releases.view(s, viewer=two.user("a", "it"), rollout_id=both)
        assert [n.node_id for n in view.nodes] == view.target == [two.a["speaker_node"]]
        with pytest.raises(Forbidden):
            releases.pause(s, actor=two.user("a", "it"), rollout_id=both, now=ctx.clock())


def test_only_the_province_uploads_releases(ctx, two):
    with ctx.db.session() as s, pytest.raises(Forbidden):
        releases.upload(s, actor=two.user("a", "it"), data=io.BytesIO(b""),
                        store=ctx.settings.releases_dir, key_path=None, now=ctx.clock())


# -- fault reports and the audit log --------------------------------------------------------
def test_a_commune_user_lists_only_their_commune_s_fault_reports(ctx, two):
    with ctx.db.session(write=False) as s:
        tickets = fault_reports.list_reports(s, viewer=two.user("a", "it"))
    assert [t.id for t in tickets] == [two.a["report_id"]]


def test_a_commune_user_cannot_answer_another_commune_s_fault_report(ctx, two):
    with ctx.db.session() as s, pytest.raises(NotFound):
        fault_reports.answer(s, actor=two.user("a", "it"), report_id=two.b["report_id"], text="Đã sửa",
                             now=ctx.clock())
    with ctx.db.session(write=False) as s:
        assert s.get(FaultReport, two.b["report_id"]).status == "open"


def test_a_commune_admin_reads_only_their_commune_s_audit_entries(ctx, two):
    with ctx.db.session(write=False) as s:
        page = audit.list_entries(s, actor=two.user("a", "admin"), flt=audit.AuditFilter(), limit=500)
    assert page.entries and {e.commune_id for e in page.entries} == {two.a_id}


def test_a_province_admin_reads_every_commune_s_audit_entries(ctx, two):
    with ctx.db.session(write=False) as s:
        page = audit.list_entries(s, actor=PROVINCE_ADMIN, flt=audit.AuditFilter(), limit=500)
    assert {two.a_id, two.b_id} <= {e.commune_id for e in page.entries}


def test_the_audit_export_of_a_commune_admin_holds_no_other_commune(ctx, two):
    with ctx.db.session(write=False) as s:
        download = audit.export(s, actor=two.user("a", "admin"), flt=audit.AuditFilter(), format="csv",
                                tz="Asia/Ho_Chi_Minh", title="Nhật ký")
    assert not walk.shows_b(download.data, "text/csv", "")
    assert walk.shows_marker(download.data, "text/csv", "xa-")


# -- the health page and its live stream ----------------------------------------------------
@pytest.fixture
def web(ctx, two, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.setattr(events, "MAX_STREAM_S", 0.5)  # the stream ends by itself after its first polls
    app = create_app(ctx.settings, ctx.db, ctx=ctx)
    app.state.ui_poll_s = 0.05
    with TestClient(app, follow_redirects=False) as client:
        yield client


def test_the_health_page_of_a_commune_it_user_shows_their_commune_only(web, two):
    ui_login(web, "xa-it", seed_registry.PASSWORD)
    page = web.get("/ui/health")
    assert page.status_code == 200 and "ALPHA" in page.text and not walk.shows_b(page.content, "", "")


def test_the_live_health_regions_of_a_commune_it_user_show_their_commune_only(web, two):
    ui_login(web, "xa-it", seed_registry.PASSWORD)
    old = "0" * 16  # marks older than anything: the first poll sends both regions
    with web.stream("GET", "/ui/events", params={"topics": f"health-nodes:{old},health-alarms:{old}"}) as r:
        body = b"".join(r.iter_bytes())
    assert b"event: health-nodes" in body and b"event: health-alarms" in body
    assert b"ALPHA" in body and not walk.shows_b(body, "text/event-stream", "")


def test_a_change_in_another_commune_does_not_re_render_a_commune_s_health_regions(ctx, two):
    from thanthien.hub.web import regions

    a_it, now = two.user("a", "it"), ctx.clock()
    with ctx.db.session(write=False) as s:
        before = regions.mark(s, ctx, "health-alarms", a_it)
    with ctx.db.session() as s:
        alarms.raise_alarm(s, kind="high_temperature", subject=two.b["speaker_node"], severity="major",
                           message="nóng", now=now, notify=False)
    with ctx.db.session(write=False) as s:
        assert regions.mark(s, ctx, "health-alarms", a_it) == before
        assert regions.mark(s, ctx, "health-alarms", PROVINCE_IT) != regions.mark(
            s, ctx, "health-alarms", a_it)


def test_a_province_it_user_s_health_page_shows_both_communes(ctx, web, two):
    with ctx.db.session() as s:
        users.create_user(s, actor=SYSTEM, username="tinh-it", password=seed_registry.PASSWORD, role="it",
                          now=ctx.clock())
    ui_login(web, "tinh-it", seed_registry.PASSWORD)
    page = web.get("/ui/health").text
    assert "ALPHA" in page and "BEBE" in page



def test_a_province_it_user_adds_a_node_to_the_commune_chosen_on_the_form(ctx, web, two):
    with ctx.db.session() as s:
        users.create_user(s, actor=SYSTEM, username="tinh-it", password=seed_registry.PASSWORD, role="it",
                          now=ctx.clock())
    ui_login(web, "tinh-it", seed_registry.PASSWORD)
    form = web.get("/ui/enroll").text
    assert 'name="commune"' in form
    csrf = csrf_for(web.app.state.hub, web.cookies[COOKIE])
    answer = web.post("/ui/enroll", data={"node_id": "xb-moi-3", "name": "Loa mới", "kind": "speaker",
                                          "commune": "xb", CSRF_FIELD: csrf})
    assert answer.status_code == 200, answer.text[:500]
    with ctx.db.session(write=False) as s:
        assert s.get(Node, "xb-moi-3").commune_id == two.b_id


def test_a_province_roll_out_of_a_commune_s_nodes_is_in_that_commune_s_audit_log(ctx, two):
    with ctx.db.session(write=False) as s:
        page = audit.list_entries(s, actor=two.user("b", "admin"), flt=audit.AuditFilter(area="rollout"))
    assert [e.subject for e in page.entries] == [f"rollout:{two.b['rollout_id']}"]
