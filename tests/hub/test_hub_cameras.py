"""CCTV health on the hub: current state, history, the delayed camera alarm, uptime."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.hub_helpers import incoming
from support import ui_login
from thanthien.hub.app import create_app
from thanthien.hub.db.models import Alarm, CameraPeriod, CameraStatus
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.jobs import contexts, maintenance
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import alarms, cameras, health, registry, users
from thanthien.hub.settings import RegistrySection
from thanthien.protocol import Topics
from thanthien.protocol.payloads import CameraHealth, NodeState

T = Topics()
ALARM_AFTER_S = 300


@pytest.fixture(autouse=True)
def _registered(ctx):
    ctx.settings.cameras.alarm_after_s = ALARM_AFTER_S
    with ctx.db.session() as s:
        registry.apply_declarations(s, registry=RegistrySection(nodes=[  # the cameras it reports on
            {"id": "mo-quay", "devices": [{"code": c, "kind": "camera"} for c in ("cam-1", "cam-2")]}]))
        registry.register_node(s, actor=SYSTEM, node_id="mo-quay", name="Bộ phận một cửa")


def report(ctx, state: str, reason: str = "", camera: str = "cam-1", since: datetime | None = None):
    payload = CameraHealth(node="mo-quay", camera=camera, state=state, reason=reason,
                           since=since or ctx.clock(), at=ctx.clock())
    IngestWorker(ctx).process([incoming(T.camera_health("mo-quay", camera), payload.to_bytes(),
                                        ctx.clock())])


def camera_alarm(ctx, camera: str = "cam-1") -> Alarm | None:
    with ctx.db.session() as s:
        return alarms.active_alarm(s, kind="camera_down", subject=f"mo-quay/{camera}")


def periods(ctx, camera: str = "cam-1") -> list[tuple[str, bool]]:
    with ctx.db.session() as s:
        rows = s.scalars(select(CameraPeriod).where(CameraPeriod.camera == camera)
                         .order_by(CameraPeriod.started_at))
        return [(p.state, p.ended_at is None) for p in rows]


def test_first_report_records_the_state_and_opens_a_period(ctx):
    report(ctx, "ok")
    with ctx.db.session() as s:
        status = s.scalar(select(CameraStatus))
        assert (status.camera, status.state) == ("cam-1", "ok")
    assert periods(ctx) == [("ok", True)]


def test_state_change_closes_the_period_and_opens_the_next(ctx):
    report(ctx, "ok")
    ctx.clock.advance(600)
    report(ctx, "black", "độ sáng trung bình 3")
    ctx.clock.advance(60)
    report(ctx, "black", "độ sáng trung bình 2")  # same state: no new period
    assert periods(ctx) == [("ok", False), ("black", True)]
    with ctx.db.session() as s:
        history = cameras.history(s, viewer=SYSTEM, node_id="mo-quay", camera="cam-1",
                                  start=ctx.clock() - timedelta(days=1), end=ctx.clock())
        assert [p.state for p in history] == ["ok", "black"]
        assert history[0].ended_at == history[1].started_at


def test_short_outage_raises_no_alarm(ctx):
    report(ctx, "down", "TCP connect refused")
    ctx.clock.advance(ALARM_AFTER_S - 10)
    contexts.register("cam-test", ctx)
    assert maintenance.check_cameras("cam-test") == 1
    report(ctx, "ok")
    assert camera_alarm(ctx) is None


def test_camera_down_longer_than_the_limit_alarms_once_then_clears(ctx):
    report(ctx, "down", "RTSP DESCRIBE answered 401 Unauthorized")
    contexts.register("cam-test", ctx)
    ctx.clock.advance(ALARM_AFTER_S + 1)
    maintenance.check_cameras("cam-test")
    ctx.clock.advance(60)
    maintenance.check_cameras("cam-test")
    raised = camera_alarm(ctx)
    assert raised is not None and raised.audience == "it"
    assert "mất tín hiệu" in raised.message and "401 Unauthorized" in raised.message
    with ctx.db.session() as s:
        assert len(s.scalars(select(Alarm).where(Alarm.kind == "camera_down")).all()) == 1
    report(ctx, "ok")
    assert camera_alarm(ctx) is None


def test_a_report_after_the_limit_raises_the_alarm_itself(ctx):
    report(ctx, "frozen", "ảnh không đổi qua 5 lần kiểm tra")
    ctx.clock.advance(ALARM_AFTER_S + 5)
    report(ctx, "frozen", "ảnh không đổi qua 6 lần kiểm tra")
    assert "đứng hình" in camera_alarm(ctx).message


def test_degraded_camera_never_alarms(ctx):
    report(ctx, "degraded", "RTSP answered in 2400 ms")
    ctx.clock.advance(10 * ALARM_AFTER_S)
    report(ctx, "degraded", "RTSP answered in 2600 ms")
    assert camera_alarm(ctx) is None


def test_late_report_does_not_rewrite_the_history(ctx):
    report(ctx, "ok")
    ctx.clock.advance(600)
    report(ctx, "black", "tối", since=ctx.clock() - timedelta(hours=5))  # node clock far behind
    with ctx.db.session() as s:
        first, second = s.scalars(select(CameraPeriod).order_by(CameraPeriod.id)).all()
        assert first.ended_at == second.started_at
        assert first.ended_at >= first.started_at


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_uptime_per_local_day_counts_ok_and_degraded_as_up(ctx):
    # Local midnight 3 March 2026 in Hà Nội is 17:00 UTC on 2 March.
    ctx.clock.now = _utc(2026, 3, 2, 17, 0)
    report(ctx, "ok")
    ctx.clock.now = _utc(2026, 3, 3, 5, 0)   # 12 h ok
    report(ctx, "degraded", "chậm")
    ctx.clock.now = _utc(2026, 3, 3, 11, 0)  # 6 h degraded
    report(ctx, "black", "tối")
    ctx.clock.now = _utc(2026, 3, 3, 17, 0)  # 6 h black, to local midnight
    report(ctx, "ok")
    ctx.clock.now = _utc(2026, 3, 4, 17, 0)
    with ctx.db.session() as s:
        rows = cameras.uptime(s, viewer=SYSTEM, start=date(2026, 3, 3), end=date(2026, 3, 5),
                              granularity="day",
                              tz=ctx_tz(ctx), now=ctx.clock())
    day1, day2 = rows
    assert day1.period == date(2026, 3, 3)
    assert day1.seconds == {"ok": 12 * 3600, "degraded": 6 * 3600, "black": 6 * 3600}
    assert day1.uptime_pct == 75.0
    assert (day2.uptime_pct, day2.unknown_s) == (100.0, 0)


def test_uptime_per_month_leaves_unobserved_time_out_of_the_ratio(ctx):
    ctx.clock.now = _utc(2026, 3, 30, 17, 0)  # 31 March local
    report(ctx, "ok")
    ctx.clock.now = _utc(2026, 3, 31, 5, 0)
    report(ctx, "down", "TCP connect refused")
    ctx.clock.now = _utc(2026, 3, 31, 17, 0)  # 1 April local midnight
    with ctx.db.session() as s:
        [march] = cameras.uptime(s, viewer=SYSTEM, start=date(2026, 3, 1), end=date(2026, 4, 1),
                                 granularity="month",
                                 tz=ctx_tz(ctx), now=ctx.clock())
    assert march.period == date(2026, 3, 1)
    assert march.uptime_pct == 50.0
    assert march.unknown_s == 30 * 86400


def ctx_tz(ctx):
    from zoneinfo import ZoneInfo

    return ZoneInfo(ctx.settings.hub.timezone)


@pytest.fixture
def api(ctx):
    with ctx.db.session() as s:
        for role in ("it", "officer"):
            users.create_user(s, actor=SYSTEM, username=role, password="mat-khau-123", role=role,
                              now=ctx.clock())
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx)) as client:
        def headers(role: str) -> dict[str, str]:
            token = client.post("/api/v1/auth/login",
                                data={"username": role, "password": "mat-khau-123"}).json()
            return {"Authorization": f"Bearer {token['access_token']}"}
        yield client, headers


def test_api_lists_cameras_with_vietnamese_state_labels(ctx, api):
    client, headers = api
    report(ctx, "frozen", "ảnh không đổi")
    body = client.get("/api/v1/cameras", headers=headers("it")).json()
    assert [(c["camera"], c["state"], c["state_label"]) for c in body] == \
        [("cam-1", "frozen", "đứng hình")]


def test_api_serves_history_and_uptime(ctx, api):
    client, headers = api
    report(ctx, "ok")
    ctx.clock.advance(3600)
    report(ctx, "down", "TCP connect refused")
    history = client.get("/api/v1/cameras/mo-quay/cam-1/history", headers=headers("it")).json()
    assert [p["state"] for p in history] == ["ok", "down"]
    day = ctx.clock().date().isoformat()
    uptime = client.get("/api/v1/cameras/uptime", headers=headers("it"),
                        params={"start": day, "end": (ctx.clock().date() + timedelta(days=1)).isoformat()})
    assert uptime.status_code == 200
    assert uptime.json()[0]["seconds"]["ok"] == 3600


def test_api_refuses_a_reversed_uptime_period(api):
    client, headers = api
    r = client.get("/api/v1/cameras/uptime", headers=headers("it"),
                   params={"start": "2026-03-05", "end": "2026-03-01"})
    assert r.status_code == 422


def test_officers_may_not_read_camera_health(api):
    client, headers = api
    assert client.get("/api/v1/cameras", headers=headers("officer")).status_code == 403
    assert client.get("/api/v1/cameras").status_code == 401


# -- unknown while the node is away (issue 14 item 7) ---------------------------------------
def node_state(ctx, state: str, session_no: int = 1):
    """The node's retained state through ingest, then the cameras follow it (the one call the
    ingest state handler makes: ``cameras.follow_node``)."""
    payload = NodeState(node="mo-quay", state=state, session=session_no, at=ctx.clock(), agent_version="1.0")
    IngestWorker(ctx).process([incoming(T.node_state("mo-quay"), payload.to_bytes(), ctx.clock())])
    with ctx.db.session() as s:
        cameras.follow_node(s, node_id="mo-quay", now=ctx.clock())


def camera_status(ctx, camera: str = "cam-1") -> CameraStatus:
    with ctx.db.session() as s:
        status = s.scalar(select(CameraStatus).where(CameraStatus.camera == camera))
        s.expunge(status)
        return status


@pytest.mark.parametrize("away", ["lost", "offline"])
def test_the_cameras_of_a_node_gone_away_are_unknown_from_that_moment(ctx, away):
    node_state(ctx, "online")
    report(ctx, "ok")
    ctx.clock.advance(600)
    went = ctx.clock()
    node_state(ctx, away)
    status = camera_status(ctx)
    assert (status.state, status.since, status.reason) == ("unknown", went, f"node {away}: " + (
        "last will: connection lost" if away == "lost" else "clean stop"))
    assert periods(ctx) == [("ok", False), ("unknown", True)]


def test_the_camera_job_makes_the_cameras_of_a_silent_node_unknown_from_its_expiry(ctx):
    node_state(ctx, "online")
    report(ctx, "ok")
    ctx.clock.advance(3600)
    with ctx.db.session() as s:
        expired_at = ctx.clock()
        health.expire_heartbeats(s, now=expired_at, heartbeat_s=30, factor=2, notify=False)
    ctx.clock.advance(20)  # the camera job runs a little later
    contexts.register("cam-test", ctx)
    maintenance.check_cameras("cam-test")
    status = camera_status(ctx)
    assert (status.state, status.since) == ("unknown", expired_at)


def test_a_report_that_arrives_while_the_node_is_away_leaves_the_camera_unknown(ctx):
    node_state(ctx, "online")
    report(ctx, "ok")
    node_state(ctx, "lost")
    ctx.clock.advance(60)
    report(ctx, "ok")
    assert camera_status(ctx).state == "unknown"
    assert periods(ctx) == [("ok", False), ("unknown", True)]


def test_a_camera_stays_unknown_after_the_node_returns_until_the_node_reports_it(ctx):
    node_state(ctx, "online")
    report(ctx, "ok")
    node_state(ctx, "lost")
    ctx.clock.advance(600)
    node_state(ctx, "online", session_no=2)
    assert camera_status(ctx).state == "unknown"


def test_the_first_report_after_the_return_counts_from_the_return_at_the_earliest(ctx):
    node_state(ctx, "online")
    report(ctx, "ok")
    node_state(ctx, "lost")
    ctx.clock.advance(3600)
    back = ctx.clock()
    node_state(ctx, "online", session_no=2)
    ctx.clock.advance(5)
    report(ctx, "ok", since=back - timedelta(hours=2))  # the node says ok all along
    status = camera_status(ctx)
    assert (status.state, status.since) == ("ok", back)
    assert periods(ctx) == [("ok", False), ("unknown", False), ("ok", True)]


def test_time_the_node_was_away_is_left_out_of_uptime(ctx):
    ctx.clock.now = _utc(2026, 3, 2, 17, 0)  # local midnight, 3 March
    node_state(ctx, "online")
    report(ctx, "ok")
    ctx.clock.now = _utc(2026, 3, 3, 5, 0)  # 12 h ok
    node_state(ctx, "lost")
    ctx.clock.now = _utc(2026, 3, 3, 11, 0)  # 6 h away
    node_state(ctx, "online", session_no=2)
    report(ctx, "black", "tối")
    ctx.clock.now = _utc(2026, 3, 3, 17, 0)  # 6 h black
    with ctx.db.session() as s:
        [day] = cameras.uptime(s, viewer=SYSTEM, start=date(2026, 3, 3), end=date(2026, 3, 4),
                               granularity="day",
                               tz=ctx_tz(ctx), now=ctx.clock())
    assert day.seconds == {"ok": 12 * 3600, "black": 6 * 3600}
    assert (day.unknown_s, day.uptime_pct) == (6 * 3600, 66.667)


def test_an_alarm_raised_before_the_node_went_away_stays_while_the_camera_is_unknown(ctx):
    node_state(ctx, "online")
    report(ctx, "down", "TCP connect refused")
    ctx.clock.advance(ALARM_AFTER_S + 1)
    report(ctx, "down", "TCP connect refused")
    assert camera_alarm(ctx) is not None
    node_state(ctx, "lost")
    contexts.register("cam-test", ctx)
    ctx.clock.advance(60)
    maintenance.check_cameras("cam-test")
    assert camera_alarm(ctx) is not None


def test_api_shows_the_camera_of_an_away_node_as_unknown(ctx, api):
    client, headers = api
    node_state(ctx, "online")
    report(ctx, "ok")
    node_state(ctx, "offline")
    [camera] = client.get("/api/v1/cameras", headers=headers("it")).json()
    assert (camera["state"], camera["state_label"], camera["brightness"]) == ("unknown", "không rõ", None)


def test_the_health_page_shows_the_camera_of_an_away_node_as_unknown(ctx, api):
    node_state(ctx, "online")
    report(ctx, "ok")
    node_state(ctx, "lost")
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx), follow_redirects=False) as web:
        page = ui_login(web, "it", "mat-khau-123").get("/ui/health").text
    assert 'data-camera-state="unknown"' in page
    assert "Không rõ" in page and "chưa có báo cáo mới" in page
