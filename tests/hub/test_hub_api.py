"""The REST API: login, role checks on every route, registry, ratings, reports, system routes."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from hub.hub_helpers import rating, rating_msg
from support import api_login, role_headers
from thanthien.hub.api.deps import RoleGuard
from thanthien.hub.app import API_PREFIX, ROUTERS, create_app
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.roles import EVERYONE, SYSTEM
from thanthien.hub.services import users

PASSWORD = "mat-khau-123"


pytestmark = pytest.mark.usefixtures("cheap_hashing")  # the many logins here stay fast


@pytest.fixture
def app(ctx):
    with ctx.db.session() as s:
        for role in EVERYONE:
            users.create_user(s, actor=SYSTEM, username=role, password=PASSWORD, role=role, now=ctx.clock())
    return create_app(ctx.settings, ctx.db, ctx=ctx)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def as_role(client):
    return role_headers(client, PASSWORD)


def guarded_routes() -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, allowed roles) of every API route but the login."""
    out = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            if route.path == "/auth/login":
                continue
            guards = [d.call for d in route.dependant.dependencies if isinstance(d.call, RoleGuard)]
            assert guards, f"{route.path} has no role check"
            out += [(method, API_PREFIX + route.path, guards[0].roles) for method in route.methods]
    return out


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_documented_route_is_in_the_checked_table(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    documented = {(m.upper(), path) for path, ops in paths.items() for m in ops
                  if path.startswith(API_PREFIX)}
    checked = {(m, p) for m, p, _roles in guarded_routes()} | {("POST", "/api/v1/auth/login")}
    assert documented == checked


def test_login_gives_a_bearer_token_for_the_right_password(client):
    response = api_login(client, "admin", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["role"] == "admin"
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == "admin"


def test_login_with_a_wrong_password_is_refused(client):
    assert api_login(client, "admin", "sai-mat-khau").status_code == 401
    assert api_login(client, "nobody", PASSWORD).status_code == 401


def test_passwords_are_stored_as_argon2_hashes(ctx, app):
    with ctx.db.session() as s:
        user = users.list_users(s, viewer=SYSTEM)[0]
    assert user.password_hash.startswith("$argon2")


def test_every_route_refuses_a_request_without_a_token(client):
    routes = guarded_routes()
    assert len(routes) > 30
    for method, path, _roles in routes:
        response = client.request(method, concrete(path))
        assert response.status_code == 401, f"{method} {path}: {response.status_code}"


def test_every_route_refuses_a_role_that_may_not_use_it(client, as_role):
    checked = 0
    for method, path, roles in guarded_routes():
        for role in sorted(set(EVERYONE) - set(roles)):
            response = client.request(method, concrete(path), headers=as_role(role))
            assert response.status_code == 403, f"{role} {method} {path}: {response.status_code}"
            checked += 1
    assert checked > 40


def test_forged_or_expired_token_is_refused(client, ctx, as_role):
    token = as_role("admin")["Authorization"]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert client.get("/api/v1/auth/me", headers={"Authorization": forged}).status_code == 401
    ctx.clock.advance(ctx.settings.http.token_ttl_s + 1)
    assert client.get("/api/v1/auth/me", headers={"Authorization": token}).status_code == 401


def test_deactivated_user_token_stops_working(client, as_role, ctx):
    token = as_role("leader")
    with ctx.db.session() as s:
        leader = next(u for u in users.list_users(s, viewer=SYSTEM) if u.username == "leader")
    client.patch(f"/api/v1/users/{leader.id}", json={"active": False}, headers=as_role("admin"))
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401


def test_registry_round_trip_through_the_api(client, as_role):
    admin = as_role("admin")
    assert client.post("/api/v1/sites", json={"code": "muong-ang", "name": "UBND thị trấn"},
                       headers=admin).status_code == 201
    counter = {"code": "quay-1", "name": "Quầy Tư pháp", "site": "muong-ang"}
    assert client.post("/api/v1/counters", json=counter, headers=admin).status_code == 201
    assert client.post("/api/v1/zones", json={"code": "ban-che", "name": "Bản Chè", "kind": "hamlet"},
                       headers=admin).status_code == 201
    node = {"id": "node-a", "name": "Một cửa"}
    assert client.post("/api/v1/nodes", json=node, headers=admin).status_code == 201
    device = client.put("/api/v1/devices", json={"node_id": "node-a", "code": "box-1", "kind": "rating_box",
                                                  "counter": "quay-1"}, headers=admin)
    assert device.status_code == 200
    nodes = client.get("/api/v1/nodes", headers=as_role("it")).json()
    assert [(n["id"], n["registered"]) for n in nodes] == [("node-a", True)]


def test_bad_body_gets_a_clear_error_and_changes_nothing(client, as_role):
    admin = as_role("admin")
    response = client.put("/api/v1/devices", json={"node_id": "node-a", "code": "box-1", "kind": "toaster"},
                          headers=admin)
    assert response.status_code == 422
    assert client.get("/api/v1/devices", headers=admin).json() == []
    duplicate = {"code": "quay-1", "name": "Quầy 1"}
    client.post("/api/v1/counters", json=duplicate, headers=admin)
    again = client.post("/api/v1/counters", json=duplicate, headers=admin)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


def test_overlapping_shift_is_refused(client, as_role, ctx):
    admin = as_role("admin")
    client.post("/api/v1/counters", json={"code": "quay-1", "name": "Quầy 1"}, headers=admin)
    officer = client.post("/api/v1/officers", json={"code": "lan", "full_name": "Nguyễn Thị Lan"},
                          headers=admin).json()
    start = ctx.clock()
    shift = {"officer_id": officer["id"], "counter": "quay-1", "starts_at": start.isoformat(),
             "ends_at": (start + timedelta(hours=4)).isoformat()}
    assert client.post("/api/v1/roster", json=shift, headers=admin).status_code == 201
    assert client.post("/api/v1/roster", json=shift, headers=admin).status_code == 409


def seed_ratings(ctx, scores_by_counter: dict[str, list[int]]) -> None:
    events = []
    seq = 0
    for counter, scores in scores_by_counter.items():
        for score in scores:
            seq += 1
            events.append(rating(seq=seq, score=score, counter=counter,
                                 pressed_at=ctx.clock() - timedelta(minutes=seq)))
    IngestWorker(ctx).process([rating_msg(e, ctx.clock()) for e in events])


def test_ratings_list_is_paged_newest_first(client, as_role, ctx):
    seed_ratings(ctx, {"quay-1": [4] * 7})
    page = client.get("/api/v1/ratings", params={"page": 2, "page_size": 3}, headers=as_role("leader")).json()
    assert page["total"] == 7 and len(page["items"]) == 3
    assert [r["seq"] for r in page["items"]] == [4, 5, 6]


def test_summary_by_counter_counts_levels_and_index(client, as_role, ctx):
    seed_ratings(ctx, {"quay-1": [4, 4, 3, 1], "quay-2": [2, 2]})
    body = client.get("/api/v1/ratings/summary", params={"group_by": "counter"},
                      headers=as_role("leader")).json()
    rows = {r["key"]["counter"]: r for r in body["rows"]}
    assert rows["quay-1"]["counts"] == {"4": 2, "3": 1, "2": 0, "1": 1}
    assert rows["quay-1"]["satisfaction_index"] == round(100 * (3 + 3 + 2 + 0) / 12, 1)
    assert rows["quay-2"]["satisfaction_index"] == round(100 * 2 / 6, 1)
    assert body["total"] == 6


def test_summary_refuses_an_unknown_grouping(client, as_role):
    response = client.get("/api/v1/ratings/summary", params={"group_by": "colour"}, headers=as_role("leader"))
    assert response.status_code == 422 and "group_by" in response.json()["detail"]


def test_summary_exports_csv_with_vietnamese_headings(client, as_role, ctx):
    seed_ratings(ctx, {"quay-1": [4, 1]})
    params = {"format": "csv", "group_by": "counter,day"}
    response = client.get("/api/v1/ratings/summary/export", params=params, headers=as_role("leader"))
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["Quầy", "Ngày", "Rất hài lòng", "Hài lòng"]
    assert rows[1][0] == "quay-1" and rows[1][-2:] == ["2", "50.0"]


def test_summary_exports_xlsx_with_vietnamese_headings(client, as_role, ctx):
    seed_ratings(ctx, {"quay-1": [4, 3, 2]})
    response = client.get("/api/v1/ratings/summary/export", params={"format": "xlsx", "group_by": "counter"},
                          headers=as_role("admin"))
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1] == ("Quầy", "Rất hài lòng", "Hài lòng", "Bình thường", "Không hài lòng", "Tổng số lượt",
                       "Chỉ số hài lòng (0–100)")
    assert rows[2][1:] == (1, 1, 1, 0, 3, round(100 * 6 / 9, 1))


def test_alarm_can_be_listed_and_acknowledged_by_it_staff(client, as_role, ctx):
    IngestWorker(ctx).process([rating_msg(rating(node="node-x"), ctx.clock())])  # unregistered -> alarm
    it = as_role("it")
    [alarm] = client.get("/api/v1/alarms", params={"active": True}, headers=it).json()
    assert alarm["kind"] == "node_unregistered"
    acked = client.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", headers=it).json()
    assert acked["acknowledged_by"] == "it"
    assert client.get("/api/v1/alarms", headers=as_role("leader")).json() == []  # not the leaders' kind


def test_healthz_answers_without_login(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] is True


def test_metrics_are_prometheus_text(client, ctx):
    seed_ratings(ctx, {"quay-1": [4, 4]})
    text = client.get("/metrics").text
    assert "# TYPE thanthien_hub_ratings_stored_total counter" in text
    assert "thanthien_hub_ratings_stored_total 2" in text
    assert 'thanthien_hub_nodes{state="online"} 0' in text
    assert "thanthien_hub_dead_letters_total" in text and "thanthien_hub_alarms_active" in text


def test_openapi_documents_the_routes(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/ratings/summary" in paths and "/api/v1/alarms/{alarm_id}/acknowledge" in paths


def test_telemetry_history_and_dead_letters_are_served_to_it_staff(client, as_role, ctx):
    from hub.hub_helpers import incoming, telemetry
    from thanthien.protocol import Topics

    topics = Topics()
    IngestWorker(ctx).process([
        incoming(topics.telemetry("node-a"), telemetry(cpu_temp_c=61.5).to_bytes(), ctx.clock()),
        incoming(topics.telemetry("node-a"), b"{broken", ctx.clock())])
    it = as_role("it")
    samples = client.get("/api/v1/nodes/node-a/telemetry", headers=it).json()
    assert [s["cpu_temp_c"] for s in samples] == [61.5]
    letters = client.get("/api/v1/dead-letters", headers=it).json()
    assert len(letters) == 1 and letters[0]["kind"] == "telemetry"
    assert client.get("/api/v1/dead-letters/counts", headers=it).json() == {"telemetry": 1}
