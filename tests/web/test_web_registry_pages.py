"""The registry and roster pages over HTTP: who may open them, create / edit / retire from a
form, a camera account that is never shown back, and the roster change that asks first."""

from __future__ import annotations

import html
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from thanthien.hub.db.models import Counter, Device, Officer, Rating, RosterPattern, Zone
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import ratings, registry, roster
from thanthien.hub.web.auth import COOKIE, CSRF_FIELD, csrf_for
from thanthien.protocol.payloads import RatingEvent
from web.conftest import login_client
from web.town import TZ

PAGES = ["/ui/registry/places", "/ui/registry/devices", "/ui/registry/officers", "/ui/roster"]
ALLOWED = {
    "admin": set(PAGES),
    "it": {"/ui/registry/places", "/ui/registry/devices"},
    "leader": {"/ui/registry/officers", "/ui/roster"},
    "officer": {"/ui/registry/officers", "/ui/roster"},
}


def _form(client, **fields: str) -> dict[str, str]:
    return {**fields, CSRF_FIELD: csrf_for(client.app.state.hub, client.cookies[COOKIE])}


def _flash(client, response) -> str:
    assert response.status_code == 303, response.text[:300]
    page = client.get(response.headers["location"])
    return html.unescape(page.text.split('role="status">', 1)[1].split("<", 1)[0].strip())


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("role", list(ALLOWED))
def test_each_role_opens_the_registry_and_roster_pages_it_may_and_is_refused_the_others(client, role):
    login_client(client, role)
    for path in PAGES:
        expected = 200 if path in ALLOWED[role] else 403
        assert client.get(path).status_code == expected, path


def test_the_menu_names_the_registry_for_admins_and_it_and_the_roster_for_its_readers(client):
    login_client(client, "it")
    page = client.get("/ui/").text
    assert ">Danh mục</a>" in page and ">Lịch trực</a>" not in page
    login_client(client, "leader")
    page = client.get("/ui/").text
    assert ">Danh mục</a>" not in page and ">Lịch trực</a>" in page


def test_an_admin_creates_a_zone_renames_it_and_retires_it_from_the_page(client, hub_server):
    code = _unique("ban")
    login_client(client, "admin")
    done = client.post("/ui/registry/zones", data=_form(client, code=code, name="Bản Mới", kind="hamlet"))
    assert _flash(client, done) == "Đã thêm khu vực phát Bản Mới"
    with hub_server.ctx.db.session() as s:
        zone_id = s.scalar(select(Zone.id).where(Zone.code == code))
    client.post(f"/ui/registry/zones/{zone_id}", data=_form(client, name="Bản Mới Đổi Tên", kind="hamlet"))
    retired = client.post(f"/ui/registry/zones/{zone_id}/retire", data=_form(client))
    assert _flash(client, retired) == "Đã ngừng sử dụng khu vực phát Bản Mới Đổi Tên"
    row = client.get("/ui/registry/places").text.split(f'data-zone="{code}"', 1)[1].split("</tr>", 1)[0]
    assert "Ngừng sử dụng từ" in row and 'data-action="restore"' in row


def test_a_counter_whose_rating_box_is_in_service_is_not_retired_and_the_page_says_why(client, hub_server):
    with hub_server.ctx.db.session() as s:
        counter_id = s.scalar(select(Counter.id).where(Counter.code == "quay-1"))
    login_client(client, "admin")
    refused = client.post(f"/ui/registry/counters/{counter_id}/retire", data=_form(client))
    assert "còn 1 hộp đánh giá đang dùng (node-a/box-quay-1)" in _flash(client, refused)
    with hub_server.ctx.db.session() as s:
        assert s.get(Counter, counter_id).retired_at is None


def test_a_code_with_diacritics_is_refused_with_the_rule(client):
    login_client(client, "admin")
    refused = client.post("/ui/registry/counters", data=_form(client, code="quầy-9", name="Quầy 9"))
    assert _flash(client, refused).startswith("Mã chỉ gồm chữ thường không dấu")


def test_a_camera_account_set_on_the_page_is_stored_and_shown_only_as_set(client, hub_server):
    code = _unique("cam")
    login_client(client, "it")
    saved = client.post("/ui/registry/devices", data=_form(
        client, node_id="node-a", code=code, kind="camera", name="Camera sảnh",
        rtsp_url="rtsp://quantri:Bi-Mat-42@192.168.1.64:554/Streaming/Channels/102",
        snapshot_url="http://192.168.1.64/ISAPI/Streaming/channels/101/picture"))
    assert _flash(client, saved) == "Đã lưu thiết bị Camera sảnh của nút node-a"
    page = client.get("/ui/registry/devices?node=node-a").text
    assert "Bi-Mat-42" not in page and "quantri" not in page
    item = page.split(f'data-device="{code}"', 1)[1].split("</li>", 1)[0]
    assert 'data-set="1"' in item and "đã đặt" in item
    assert 'value="rtsp://192.168.1.64:554/Streaming/Channels/102"' in item
    with hub_server.ctx.db.session() as s:
        device = s.scalar(select(Device).where(Device.node_id == "node-a", Device.code == code))
        assert (device.camera_username, device.camera_password) == ("quantri", "Bi-Mat-42")


def test_a_retired_counter_is_not_offered_for_a_rating_box(client, hub_server):
    code = _unique("quay")
    with hub_server.ctx.db.session() as s:
        counter = registry.create_counter(s, actor=SYSTEM, code=code, name="Quầy đã đóng")
        registry.retire(s, actor=SYSTEM, model=Counter, ident=counter.id)
    login_client(client, "it")
    assert f'value="{code}"' not in client.get("/ui/registry/devices").text


def test_an_admin_adds_an_officer_and_a_leader_sees_them_without_the_forms(client, hub_server):
    code = _unique("cb")
    login_client(client, "admin")
    added = client.post("/ui/registry/officers", data=_form(client, code=code, full_name="Lò Văn Sơn",
                                                            title="Công chức Địa chính"))
    assert _flash(client, added) == "Đã thêm cán bộ Lò Văn Sơn"
    login_client(client, "leader")
    page = client.get("/ui/registry/officers").text
    assert "Lò Văn Sơn" in page and 'id="create-officer"' not in page


# -- the roster -------------------------------------------------------------------------------------
@pytest.fixture
def desk(hub_server):
    """A counter of its own with an officer, and a press on it two hours ago (10 minutes past the hour)."""
    ctx = hub_server.ctx
    code = _unique("quay")
    now = ctx.clock()
    with ctx.db.session() as s:
        registry.create_counter(s, actor=SYSTEM, code=code, name=f"Quầy {code}")
        officer = registry.create_officer(s, actor=SYSTEM, code=_unique("cb"), full_name="Quàng Thị Mai")
        officer_id = officer.id
    pressed = (now - timedelta(hours=2)).replace(minute=10, second=0, microsecond=0)
    event = RatingEvent(event_id=uuid.uuid4(), node="node-x", seq=1, box="box", counter=code, score=4,
                        pressed_at=pressed)
    with ctx.db.session() as s:
        ratings.store_ratings(s, events=[event], now=now)
    return code, officer_id, pressed


def _pattern_form(client, code: str, officer_id: int, pressed, **over: str) -> dict[str, str]:
    local = pressed.astimezone(roster.ZoneInfo(TZ))
    fields = {"counter": code, "officer_id": str(officer_id), "weekdays": str(local.isoweekday()),
              "starts": f"{local.hour:02d}:00", "ends": f"{local.hour:02d}:30",
              "valid_from": local.date().isoformat(), **over}
    return _form(client, **fields)


def test_a_roster_change_that_moves_stored_ratings_asks_first_and_changes_nothing(client, hub_server, desk):
    code, officer_id, pressed = desk
    login_client(client, "admin")
    asked = client.post("/ui/roster/patterns", data=_pattern_form(client, code, officer_id, pressed))
    assert asked.status_code == 200
    assert 'data-count="1"' in asked.text and "không ai → Quàng Thị Mai" in html.unescape(asked.text)
    with hub_server.ctx.db.session() as s:
        assert s.scalar(select(Rating.officer_id).where(Rating.counter_code == code)) is None
        assert s.scalar(select(RosterPattern.id).join(Counter).where(Counter.code == code)) is None


def test_a_confirmed_roster_change_moves_the_stored_ratings(client, hub_server, desk):
    code, officer_id, pressed = desk
    login_client(client, "admin")
    form = _pattern_form(client, code, officer_id, pressed, confirm="1", expected="1")
    done = client.post("/ui/roster/patterns", data=form)
    assert "1 lượt đánh giá đã lưu được ghi lại" in _flash(client, done)
    with hub_server.ctx.db.session() as s:
        assert s.scalar(select(Rating.officer_id).where(Rating.counter_code == code)) == officer_id


def test_a_confirmation_whose_count_changed_since_is_refused(client, hub_server, desk):
    code, officer_id, pressed = desk
    login_client(client, "admin")
    refused = client.post("/ui/roster/patterns", data=_pattern_form(client, code, officer_id, pressed,
                                                                    confirm="1", expected="0"))
    assert "nay là 1, không còn là 0" in _flash(client, refused)
    with hub_server.ctx.db.session() as s:
        assert s.scalar(select(Rating.officer_id).where(Rating.counter_code == code)) is None


def test_a_roster_change_that_moves_no_rating_is_saved_at_once(client, hub_server, desk):
    code, officer_id, pressed = desk
    login_client(client, "admin")
    later = (pressed + timedelta(days=1)).astimezone(roster.ZoneInfo(TZ)).date().isoformat()
    done = client.post("/ui/roster/patterns", data=_pattern_form(client, code, officer_id, pressed,
                                                                 valid_from=later))
    assert _flash(client, done) == "Đã lưu lịch trực."
    page = client.get(f"/ui/roster?counter={code}&week={later}").text
    assert "Quàng Thị Mai" in page.split('id="pattern"', 1)[1]


def test_an_officer_still_on_the_roster_cannot_be_retired(client, hub_server, desk):
    code, officer_id, pressed = desk
    login_client(client, "admin")
    client.post("/ui/roster/patterns", data=_pattern_form(client, code, officer_id, pressed, confirm="1",
                                                          expected="1"))
    refused = client.post(f"/ui/registry/officers/{officer_id}/retire", data=_form(client))
    assert "vẫn còn trong lịch trực" in _flash(client, refused)
    with hub_server.ctx.db.session() as s:
        assert s.get(Officer, officer_id).retired_at is None
