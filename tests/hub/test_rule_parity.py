"""One rule, one answer: the same user asks the API and the web UI for the same thing and is
allowed or refused alike (the rules live in the services and in ``hub/roles.py``)."""

from __future__ import annotations

import html
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.api_and_web import PASSWORD, Hub, open_hub
from support import api_login
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Alarm, AuditEntry, Counter, Rating, User
from thanthien.hub.roles import (
    ADMINS,
    BROADCAST_APPROVERS,
    BROADCAST_EDITORS,
    BROADCAST_READERS,
    DEVICE_STAFF,
    EVERYONE,
    REGISTRY_EDITORS,
    REPORT_READERS,
    ROLES,
    ROSTER_EDITORS,
    ROSTER_READERS,
    SYSTEM,
)
from thanthien.hub.services import alarms, registry

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def hub(ctx: HubContext) -> Iterator[Hub]:
    with open_hub(ctx) as opened:
        yield opened


def outcome(response: httpx.Response) -> str:
    """What the user was told: refused (403), invalid (422), or done (2xx, or the UI's redirect
    back to its page)."""
    if response.status_code in (403, 422):
        return {403: "refused", 422: "invalid"}[response.status_code]
    assert response.status_code in (200, 201, 204, 303), (response.status_code, response.text[:300])
    return "done"


def flash_error(web: TestClient, response: httpx.Response) -> str | None:
    """The error message the UI shows after a redirect, or ``None`` when it reported success."""
    assert response.status_code == 303, response.text[:300]
    page = web.get(response.headers["location"])
    marker = 'class="notice error" role="status">'
    if marker not in page.text:
        return None
    return html.unescape(page.text.split(marker, 1)[1].split("<", 1)[0].strip())


def device_alarm(ctx: HubContext, subject: str) -> int:
    with ctx.db.session() as s:
        alarm = alarms.raise_alarm(s, kind="node_offline", subject=subject, severity="major",
                                   message="Thiết bị ngoại tuyến", now=ctx.clock(), notify=False).alarm
        s.flush()
        return alarm.id


# -- the four cases of the issue --------------------------------------------------------------
def test_a_leader_cannot_acknowledge_a_device_alarm_through_the_api_or_the_web(hub: Hub):
    by_api, by_web = device_alarm(hub.ctx, "loa-1"), device_alarm(hub.ctx, "loa-2")
    api = hub.api.post(f"/api/v1/alarms/{by_api}/acknowledge", headers=hub.headers("leader"))
    hub.login("leader")
    web = hub.web.post(f"/ui/alarms/{by_web}/acknowledge", data=hub.form(next="/ui/"))
    assert (outcome(api), outcome(web)) == ("refused", "refused")
    with hub.ctx.db.session(write=False) as s:
        assert [s.get(Alarm, i).acknowledged_at for i in (by_api, by_web)] == [None, None]


@pytest.mark.parametrize("change", [{"role": "leader"}, {"active": False}], ids=["demote", "disable"])
def test_an_admin_cannot_demote_or_disable_themselves_through_the_api_or_the_web(hub: Hub, change):
    me = hub.ids["admin"]
    api = hub.api.patch(f"/api/v1/users/{me}", json=change, headers=hub.headers("admin"))
    hub.login("admin")
    if "role" in change:
        web = hub.web.post(f"/ui/users/{me}/role", data=hub.form(role=change["role"]))
    else:
        web = hub.web.post(f"/ui/users/{me}/active", data=hub.form(active="0"))
    assert (outcome(api), outcome(web)) == ("refused", "refused")
    with hub.ctx.db.session(write=False) as s:
        admin = s.get(User, me)
        assert (admin.role, admin.active) == ("admin", True)


def test_stop_with_no_speaker_is_refused_with_the_same_reason_through_the_api_and_the_web(hub: Hub):
    api = hub.api.post("/api/v1/broadcasts/stop", json={}, headers=hub.headers("leader"))
    hub.login("leader")
    web = hub.web.post("/ui/stop", data=hub.form())
    assert api.status_code == 422
    assert flash_error(hub.web, web) == api.json()["detail"] == "Không có cụm loa nào trong phạm vi đã chọn."


@pytest.mark.parametrize(("field", "value"), [("username", "người-dùng"), ("username", "x" * 65),
                                              ("password", "ngan"), ("full_name", "H" * 201)])
def test_a_user_the_rules_refuse_is_refused_through_the_api_and_the_web(hub: Hub, field, value):
    fields = {"username": "can-bo-moi", "password": PASSWORD, "role": "officer", "full_name": "Lò Thị Mai",
              field: value}
    api = hub.api.post("/api/v1/users", json=fields, headers=hub.headers("admin"))
    hub.login("admin")
    web = hub.web.post("/ui/users", data=hub.form(**fields))
    assert (outcome(api), outcome(web)) == ("invalid", "invalid")
    with hub.ctx.db.session(write=False) as s:
        assert s.query(User).count() == len(ROLES)


def test_an_admin_cannot_reset_their_own_password_through_the_api_or_the_web(hub: Hub):
    me = hub.ids["admin"]
    api = hub.api.post(f"/api/v1/users/{me}/reset-password", headers=hub.headers("admin"))
    hub.login("admin")
    web = hub.web.post(f"/ui/users/{me}/password", data=hub.form())
    assert (outcome(api), outcome(web)) == ("refused", "refused")


def test_an_admin_resets_another_users_password_through_the_api_and_it_works_once(hub: Hub):
    answer = hub.api.post(f"/api/v1/users/{hub.ids['it']}/reset-password", headers=hub.headers("admin"))
    assert answer.status_code == 200
    new = answer.json()["password"]
    assert api_login(hub.api, "it", PASSWORD).status_code == 401
    assert api_login(hub.api, "it", new).status_code == 200


# -- every role, the same permission on both sides --------------------------------------------
# The permission, and an API request and a web request it guards.
PAIRS = {
    "reports": (REPORT_READERS, ("GET", "/api/v1/ratings/summary"), ("GET", "/ui/satisfaction")),
    "export": (REPORT_READERS, ("GET", "/api/v1/ratings/summary/export?format=csv"),
               ("GET", "/ui/satisfaction/export?format=csv")),
    "devices": (DEVICE_STAFF, ("GET", "/api/v1/nodes/loa-1/telemetry"), ("GET", "/ui/health")),
    "users": (ADMINS, ("GET", "/api/v1/users"), ("GET", "/ui/users")),
    "media": (BROADCAST_EDITORS, ("GET", "/api/v1/media"), ("GET", "/ui/media")),
    "calendar": (BROADCAST_READERS, ("GET", "/api/v1/broadcasts?status=draft"), ("GET", "/ui/broadcasts")),
    "draft": (BROADCAST_EDITORS, ("POST", "/api/v1/broadcasts"), ("POST", "/ui/broadcasts")),
    "stop": (BROADCAST_APPROVERS, ("POST", "/api/v1/broadcasts/stop"), ("POST", "/ui/stop")),
    "home": (EVERYONE, ("GET", "/api/v1/auth/me"), ("GET", "/ui/")),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_each_role_is_allowed_or_refused_alike_by_the_api_and_the_page(hub: Hub, pair, role):
    permission, (api_method, api_path), (web_method, web_path) = PAIRS[pair]
    api = hub.api.request(api_method, api_path, headers=hub.headers(role),
                          json={} if api_method == "POST" else None)
    hub.login(role)
    web = hub.web.request(web_method, web_path, data=hub.form() if web_method == "POST" else None)
    refused = role not in permission
    assert (api.status_code == 403, web.status_code == 403) == (refused, refused), \
        (api.status_code, web.status_code)


# -- broadcasts: four eyes and quiet-hours exceptions (issue 14) ------------------------------
def drafts(hub: Hub, author: str, count: int, **over: object) -> list[int]:
    """``count`` drafts the user ``author`` (named after their role) wrote; daily at 07:00 unless
    ``over`` says otherwise."""
    from zoneinfo import ZoneInfo

    from broadcasts.support import media_row, spec

    from thanthien.hub.roles import ActingUser
    from thanthien.hub.services import broadcasts
    from thanthien.hub.services.schedule import BroadcastSettings

    tz = ZoneInfo(hub.ctx.settings.hub.timezone)
    with hub.ctx.db.session() as s:
        sha = media_row(s, hub.ctx.clock())
        return [broadcasts.create_broadcast(s, spec=spec(sha, **over), actor=ActingUser(author, author),
                                            now=hub.ctx.clock(), tz=tz, cfg=BroadcastSettings()).id
                for _ in range(count)]


def statuses(hub: Hub, ids: list[int]) -> list[str]:
    from thanthien.hub.db.models import Broadcast

    with hub.ctx.db.session(write=False) as s:
        return [s.get(Broadcast, i).status for i in ids]


def approve_through_both(
    hub: Hub, role: str, by_api: int, by_web: int
) -> tuple[httpx.Response, httpx.Response]:
    """A user of ``role`` approves one broadcast through the API and another on its page."""
    api = hub.api.post(f"/api/v1/broadcasts/{by_api}/approve", headers=hub.headers(role))
    hub.login(role)
    return api, hub.web.post(f"/ui/broadcasts/{by_web}/approve", data=hub.form())


LATE = {"local_time": "23:00", "quiet_exception_requested": True}
NO_REASON = "Ghi rõ lý do cho phép phát trong giờ yên tĩnh."


def test_the_author_cannot_approve_their_own_broadcast_through_the_api_or_the_web(hub: Hub):
    by_api, by_web = drafts(hub, "leader", 2)
    api, web = approve_through_both(hub, "leader", by_api, by_web)
    assert (outcome(api), outcome(web)) == ("refused", "refused")
    assert statuses(hub, [by_api, by_web]) == ["draft", "draft"]


def test_with_self_approval_allowed_the_author_approves_through_the_api_and_the_web(hub: Hub):
    hub.ctx.settings.broadcasts.allow_self_approval = True  # a commune with a single leader
    by_api, by_web = drafts(hub, "leader", 2)
    api, web = approve_through_both(hub, "leader", by_api, by_web)
    assert (outcome(api), outcome(web)) == ("done", "done")
    assert statuses(hub, [by_api, by_web]) == ["approved", "approved"]


def test_an_officer_cannot_grant_a_quiet_exception_through_the_api_or_the_web(hub: Hub):
    by_api, by_web = drafts(hub, "officer", 2, **LATE)
    api = hub.api.post(f"/api/v1/broadcasts/{by_api}/quiet-exception", headers=hub.headers("officer"),
                       json={"reason": "Lời chúc giao thừa"})
    hub.login("officer")
    web = hub.web.post(f"/ui/broadcasts/{by_web}/quiet-exception", data=hub.form(reason="Lời chúc giao thừa"))
    assert (outcome(api), outcome(web)) == ("refused", "refused")


def test_a_quiet_exception_without_a_reason_is_refused_with_the_same_reason_through_the_api_and_the_web(
    hub: Hub,
):
    by_api, by_web = drafts(hub, "officer", 2, **LATE)
    api = hub.api.post(f"/api/v1/broadcasts/{by_api}/quiet-exception", headers=hub.headers("leader"),
                       json={"reason": "  "})
    hub.login("leader")
    web = hub.web.post(f"/ui/broadcasts/{by_web}/quiet-exception", data=hub.form(reason="  "))
    assert api.status_code == 422
    assert flash_error(hub.web, web) == api.json()["detail"] == NO_REASON


def test_approving_a_late_broadcast_without_an_exception_is_refused_with_the_same_reason_through_both(
    hub: Hub,
):
    by_api, by_web = drafts(hub, "officer", 2, **LATE)
    api, web = approve_through_both(hub, "leader", by_api, by_web)
    assert api.status_code == 422 and "cần lãnh đạo cho phép ngoại lệ giờ yên tĩnh" in api.json()["detail"]
    assert flash_error(hub.web, web) == api.json()["detail"]
    assert statuses(hub, [by_api, by_web]) == ["draft", "draft"]


# -- logins and the audit log (issue 14 item 8) ------------------------------------------------
def test_an_officer_cannot_read_the_audit_log_through_the_api_or_the_web(hub: Hub):
    api = hub.api.get("/api/v1/audit", headers=hub.headers("officer"))
    hub.login("officer")
    web = hub.web.get("/ui/audit")
    assert (outcome(api), outcome(web)) == ("refused", "refused")


AUDIT_PAIRS = {
    "read": (("GET", "/api/v1/audit"), ("GET", "/ui/audit")),
    "export": (("GET", "/api/v1/audit/export?format=csv"), ("GET", "/ui/audit/export?format=csv")),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("pair", sorted(AUDIT_PAIRS))
def test_each_role_reads_the_audit_log_or_is_refused_alike_by_the_api_and_the_page(hub: Hub, pair, role):
    (api_method, api_path), (web_method, web_path) = AUDIT_PAIRS[pair]
    api = hub.api.request(api_method, api_path, headers=hub.headers(role))
    hub.login(role)
    web = hub.web.request(web_method, web_path)
    refused = role not in ADMINS
    assert (api.status_code == 403, web.status_code == 403) == (refused, refused), \
        (api.status_code, web.status_code)


def _fail_web_login(hub: Hub, username: str) -> httpx.Response:
    hub.web.cookies.clear()
    return hub.web.post("/ui/login", data={"username": username, "password": "sai-mat-khau-1"})


def test_a_throttled_login_is_answered_alike_by_the_api_and_the_web(hub: Hub):
    for _ in range(hub.ctx.settings.auth.account_failures):
        api_login(hub.api, "officer", "sai-mat-khau-1")
    api = api_login(hub.api, "officer", PASSWORD)
    hub.web.cookies.clear()
    web = hub.web.post("/ui/login", data={"username": "officer", "password": PASSWORD})
    assert (api.status_code, web.status_code) == (429, 429)
    assert api.headers["Retry-After"] == web.headers["Retry-After"]
    assert api.json()["detail"].startswith("Đăng nhập sai quá nhiều lần.")
    assert api.json()["detail"] in html.unescape(web.text)


def test_wrong_logins_through_the_web_and_the_api_count_together(hub: Hub):
    for _ in range(hub.ctx.settings.auth.account_failures - 1):
        assert _fail_web_login(hub, "leader").status_code == 401
    assert api_login(hub.api, "leader", "sai-mat-khau-1").status_code == 429


def test_locking_a_user_through_the_api_or_the_web_is_audited_alike(hub: Hub):
    api = hub.api.patch(f"/api/v1/users/{hub.ids['it']}", json={"active": False},
                        headers=hub.headers("admin"))
    hub.login("admin")
    web = hub.web.post(f"/ui/users/{hub.ids['leader']}/active", data=hub.form(active="0"))
    assert (outcome(api), outcome(web)) == ("done", "done")
    with hub.ctx.db.session(write=False) as s:
        locks = select(AuditEntry).where(AuditEntry.action == "user.lock").order_by(AuditEntry.id)
        entries = s.scalars(locks)
        seen = [(e.subject, e.actor_username, e.actor_id, e.at) for e in entries]
    now = hub.ctx.clock()
    admin = hub.ids["admin"]
    assert seen == [("user:it", "admin", admin, now), ("user:leader", "admin", admin, now)]


# -- the registry pages and the duty roster (issue 15) ----------------------------------------
REGISTRY_PAIRS = {  # the permission, an API request and the web request that does the same
    "officers": (ROSTER_READERS, ("GET", "/api/v1/officers"), ("GET", "/ui/registry/officers")),
    "roster": (ROSTER_READERS, ("GET", "/api/v1/roster/duty"), ("GET", "/ui/roster")),
    "zone-create": (REGISTRY_EDITORS, ("POST", "/api/v1/zones"), ("POST", "/ui/registry/zones")),
    "officer-create": (REGISTRY_EDITORS, ("POST", "/api/v1/officers"), ("POST", "/ui/registry/officers")),
    "device-save": (DEVICE_STAFF, ("PUT", "/api/v1/devices"), ("POST", "/ui/registry/devices")),
    "pattern-add": (ROSTER_EDITORS, ("POST", "/api/v1/roster/patterns"), ("POST", "/ui/roster/patterns")),
    "exception-add": (ROSTER_EDITORS, ("POST", "/api/v1/roster/exceptions"),
                      ("POST", "/ui/roster/exceptions")),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("pair", sorted(REGISTRY_PAIRS))
def test_each_role_may_or_may_not_keep_the_registry_and_roster_alike_through_the_api_and_the_page(
        hub: Hub, pair, role):
    permission, (api_method, api_path), (web_method, web_path) = REGISTRY_PAIRS[pair]
    writes = api_method != "GET"
    api = hub.api.request(api_method, api_path, headers=hub.headers(role), json={} if writes else None)
    hub.login(role)
    web = hub.web.request(web_method, web_path, data=hub.form() if writes else None)
    refused = role not in permission
    assert (api.status_code == 403, web.status_code == 403) == (refused, refused), \
        (api.status_code, web.status_code)


@pytest.fixture
def box(hub: Hub) -> dict[str, int]:
    """A counter served by a rating box in service, a zone, an officer: their ids."""
    with hub.ctx.db.session() as s:
        counter = registry.create_counter(s, actor=SYSTEM, code="quay-1", name="Quầy 1")
        zone = registry.create_zone(s, actor=SYSTEM, code="ban-hon", name="Bản Hón")
        registry.register_node(s, actor=SYSTEM, node_id="mot-cua")
        registry.upsert_device(s, actor=SYSTEM, node_id="mot-cua", code="box-1", kind="rating_box",
                               counter="quay-1")
        officer = registry.create_officer(s, actor=SYSTEM, code="cb-lan", full_name="Nguyễn Thị Lan")
        return {"counter": counter.id, "zone": zone.id, "officer": officer.id}


def test_retiring_a_counter_its_rating_box_still_serves_is_refused_with_the_same_reason_through_both(
        hub: Hub, box):
    api = hub.api.post(f"/api/v1/counters/{box['counter']}/retire", headers=hub.headers("admin"))
    hub.login("admin")
    web = hub.web.post(f"/ui/registry/counters/{box['counter']}/retire", data=hub.form())
    assert api.status_code == 409
    assert flash_error(hub.web, web) == api.json()["detail"]
    assert "còn 1 hộp đánh giá đang dùng (mot-cua/box-1)" in api.json()["detail"]


def test_a_rating_box_for_a_retired_counter_is_refused_with_the_same_reason_through_both(hub: Hub, box):
    with hub.ctx.db.session() as s:
        registry.create_counter(s, actor=SYSTEM, code="quay-cu", name="Quầy cũ")
        retired = s.scalar(select(Counter.id).where(Counter.code == "quay-cu"))
        registry.retire(s, actor=SYSTEM, model=Counter, ident=retired)
    body = {"node_id": "mot-cua", "code": "box-2", "kind": "rating_box", "counter": "quay-cu"}
    api = hub.api.put("/api/v1/devices", json=body, headers=hub.headers("it"))
    hub.login("it")
    web = hub.web.post("/ui/registry/devices", data=hub.form(**body))
    assert api.status_code == 422
    assert flash_error(hub.web, web) == api.json()["detail"] == \
        "Quầy cũ đã ngừng sử dụng; hãy chọn chỗ khác."


def test_a_camera_password_is_shown_by_neither_the_api_nor_the_page_only_that_one_is_set(hub: Hub, box):
    secret = "Mat-Khau-Camera-77"
    body = {"node_id": "mot-cua", "code": "cam-1", "kind": "camera", "rtsp_url": "rtsp://192.168.1.64/main",
            "camera_username": "quantri", "camera_password": secret}
    api = hub.api.put("/api/v1/devices", json=body, headers=hub.headers("it"))
    listed = hub.api.get("/api/v1/devices", headers=hub.headers("it"))
    hub.login("it")
    page = hub.web.get("/ui/registry/devices")
    with hub.ctx.db.session(write=False) as s:
        audited = repr([e.details for e in s.scalars(select(AuditEntry))])
    assert api.json()["has_credentials"] is True
    for shown in (api.text, listed.text, page.text, audited):
        assert secret not in shown and "quantri" not in shown
    assert "credentials': 'set'" in audited


def test_a_roster_change_counts_the_same_stored_ratings_through_the_api_dry_run_and_the_page(
        hub: Hub, box):
    from datetime import timedelta

    from hub.hub_helpers import rating, rating_msg
    from thanthien.hub.ingest.worker import IngestWorker

    pressed = hub.ctx.clock() - timedelta(minutes=30)  # Monday 08:30 in Hà Nội
    IngestWorker(hub.ctx).process([rating_msg(rating(node="mot-cua", box="box-1", pressed_at=pressed),
                                              hub.ctx.clock())])
    fields = {"counter": "quay-1", "officer_id": box["officer"], "weekdays": [1], "starts": "07:30",
              "ends": "11:30", "valid_from": "2026-03-02"}
    api = hub.api.post("/api/v1/roster/patterns?dry_run=true", json=fields, headers=hub.headers("admin"))
    hub.login("admin")
    web = hub.web.post("/ui/roster/patterns", data=hub.form(**{k: str(v) for k, v in fields.items()
                                                               if k != "weekdays"}, weekdays="1"))
    assert api.json()["ratings_changed"] == 1 and api.json()["dry_run"] is True
    assert 'data-count="1"' in web.text
    with hub.ctx.db.session(write=False) as s:
        assert s.scalar(select(Rating.officer_id)) is None  # neither changed anything


def test_a_clashing_weekly_shift_is_refused_with_the_same_reason_through_the_api_and_the_web(hub: Hub, box):
    fields = {"counter": "quay-1", "officer_id": box["officer"], "weekdays": [1, 2], "starts": "07:30",
              "ends": "11:30", "valid_from": "2026-03-02"}
    admin = hub.headers("admin")
    assert hub.api.post("/api/v1/roster/patterns", json=fields, headers=admin).status_code == 201
    api = hub.api.post("/api/v1/roster/patterns", json={**fields, "weekdays": [2]}, headers=admin)
    hub.login("admin")
    web = hub.web.post("/ui/roster/patterns", data=hub.form(counter="quay-1", officer_id=str(box["officer"]),
                                                            weekdays="2", starts="10:00", ends="12:00",
                                                            valid_from="2026-03-09"))
    assert api.status_code == 409
    assert flash_error(hub.web, web) == api.json()["detail"]
