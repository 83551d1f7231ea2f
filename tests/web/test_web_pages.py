"""Pages over HTTP without a browser: who may open what, forms that must change nothing,
exports, bad input, and the live stream's role filter."""

from __future__ import annotations

import csv
import html
import io
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from thanthien.hub.db.models import Alarm, User
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import alarms, audit
from thanthien.hub.web.auth import COOKIE, CSRF_FIELD, csrf_for
from web.conftest import login_client
from web.town import OFFICER, PASSWORDS, TZ

PAGES = ["/ui/", "/ui/health", "/ui/nodes/node-a", "/ui/satisfaction", "/ui/satisfaction/export?format=csv",
         "/ui/users", "/ui/audit", "/ui/audit/export?format=csv"]
ALLOWED = {
    "admin": set(PAGES),
    "officer": {"/ui/"},
    "it": {"/ui/", "/ui/health", "/ui/nodes/node-a"},
    "leader": {"/ui/", "/ui/satisfaction", "/ui/satisfaction/export?format=csv"},
}


def _csrf(client) -> str:
    return csrf_for(client.app.state.hub, client.cookies[COOKIE])


@pytest.mark.parametrize("path", PAGES)
def test_a_page_without_login_redirects_to_the_login_form(client, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login?next=/ui/")


@pytest.mark.parametrize("role", list(ALLOWED))
def test_each_role_opens_its_pages_and_gets_a_clear_refusal_elsewhere(client, role):
    login_client(client, role)
    for path in PAGES:
        response = client.get(path)
        if path in ALLOWED[role]:
            assert response.status_code == 200, path
        else:
            assert response.status_code == 403, path
            assert "Không có quyền truy cập" in response.text
            assert "Trang này dành cho" in response.text


def test_a_form_without_the_csrf_token_changes_nothing(client, hub_server):
    login_client(client, "admin")
    response = client.post("/ui/users", data={"username": "khong-csrf", "role": "it",
                                              "password": "12345678abc"})
    assert response.status_code == 403
    assert "Phiên làm việc đã hết hạn" in response.text
    with hub_server.ctx.db.session() as session:
        assert session.scalar(select(User).where(User.username == "khong-csrf")) is None


def test_creating_a_user_with_a_short_password_shows_the_problem_and_creates_nothing(client, hub_server):
    login_client(client, "admin")
    response = client.post("/ui/users", data={"username": "ngan", "role": "it", "password": "ngan",
                                              CSRF_FIELD: _csrf(client)})
    assert response.status_code == 422
    assert "Mật khẩu phải có từ 8 đến 200 ký tự" in response.text
    with hub_server.ctx.db.session() as session:
        assert session.scalar(select(User).where(User.username == "ngan")) is None


def test_creating_a_user_that_exists_is_refused(client):
    login_client(client, "admin")
    response = client.post("/ui/users", data={"username": "leader", "role": "it", "password": "12345678abc",
                                              CSRF_FIELD: _csrf(client)})
    assert response.status_code == 409
    assert "Tên đăng nhập leader đã có người dùng" in response.text


def test_an_admin_cannot_lock_themselves_out(client, hub_server):
    login_client(client, "admin")
    with hub_server.ctx.db.session() as session:
        admin_id = session.scalar(select(User.id).where(User.username == "admin"))
    response = client.post(f"/ui/users/{admin_id}/active", data={"active": "0", CSRF_FIELD: _csrf(client)})
    assert response.status_code == 403  # as the API answers (tests/hub/test_rule_parity.py)
    assert "Không thể tự đổi vai trò hay khóa tài khoản của chính mình" in response.text
    with hub_server.ctx.db.session() as session:
        assert session.get(User, admin_id).active is True


def test_a_leader_cannot_acknowledge_a_device_alarm(client, hub_server):
    with hub_server.ctx.db.session() as session:
        alarm = alarms.raise_alarm(session, kind="disk_full", subject="node-b", severity="major",
                                   message="Thiết bị Loa bản Nà Hin: bộ nhớ đã dùng 95%",
                                   now=hub_server.ctx.clock(), notify=False).alarm
        session.flush()
        alarm_id = alarm.id
    login_client(client, "leader")
    response = client.post(f"/ui/alarms/{alarm_id}/acknowledge", data={CSRF_FIELD: _csrf(client)})
    assert response.status_code == 403
    with hub_server.ctx.db.session() as session:
        assert session.get(Alarm, alarm_id).acknowledged_at is None
        alarms.clear_alarm(session, kind="disk_full", subject="node-b", now=hub_server.ctx.clock(),
                           notify=False)


def test_the_csv_export_has_vietnamese_headings_and_a_byte_order_mark(client, hub_server):
    first = min(p.at for p in hub_server.town.presses).astimezone(ZoneInfo(TZ)).date()
    last = max(p.at for p in hub_server.town.presses).astimezone(ZoneInfo(TZ)).date()
    login_client(client, "leader")
    params = {"format": "csv", "group_by": "officer", "start": first.isoformat(), "end": last.isoformat()}
    response = client.get("/ui/satisfaction/export", params=params)
    assert response.status_code == 200
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Cán bộ", "Rất hài lòng", "Hài lòng", "Bình thường", "Không hài lòng", "Tổng số lượt",
                       "Chỉ số hài lòng (0–100)"]
    disposition = response.headers["content-disposition"]
    assert f'filename="muc-do-hai-long-officer-{first:%Y%m%d}-{last:%Y%m%d}.csv"' in disposition
    lan = next(r for r in rows if r[0] == OFFICER)
    assert int(lan[5]) == sum(1 for p in hub_server.town.presses if p.counter == "quay-1")


def test_a_period_that_ends_before_it_starts_is_explained_not_crashed(client):
    login_client(client, "leader")
    response = client.get("/ui/satisfaction?start=2026-03-31&end=2026-03-01")
    assert response.status_code == 200
    assert "Ngày kết thúc phải sau ngày bắt đầu (kỳ báo cáo)" in response.text
    export = client.get("/ui/satisfaction/export?start=2026-13-01")
    assert export.status_code == 422
    assert "Ngày không hợp lệ" in export.text


def test_an_unknown_node_gets_a_vietnamese_not_found_page(client):
    login_client(client, "it")
    response = client.get("/ui/nodes/khong-co")
    assert response.status_code == 404
    assert "Không tìm thấy thiết bị" in response.text


def test_login_never_redirects_to_another_site(client):
    response = client.post("/ui/login", data={"username": "it", "password": "mat-khau-it-2026",
                                              "next": "//evil.example/ui/"})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/"


def test_logging_out_ends_the_session(client):
    login_client(client, "it")
    assert client.post("/ui/logout", data={CSRF_FIELD: _csrf(client)}).status_code == 303
    assert client.get("/ui/health").status_code == 303


def test_text_from_devices_is_escaped(client, hub_server):
    from thanthien.hub.services import registry

    with hub_server.ctx.db.session() as session:
        registry.register_node(session, actor=SYSTEM, node_id="node-x", name="<script>alert(1)</script>")
    login_client(client, "it")
    page = client.get("/ui/health").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_live_stream_needs_a_login(client):
    assert client.get("/ui/events?topics=health-nodes").status_code == 401


def test_the_live_stream_follows_only_the_topics_a_role_may_see():
    from thanthien.hub.web.routes.events import requested

    asked = "health-nodes:0123456789abcdef,today:0123456789abcdef,leader-alarms:bad,unknown:x"
    assert requested(asked, "leader") == {"today": "0123456789abcdef", "leader-alarms": ""}
    assert requested(asked, "it") == {"health-nodes": "0123456789abcdef"}
    assert requested(asked, "officer") == {}


def test_a_fragment_of_several_lines_is_one_event():
    from thanthien.hub.web.routes.events import sse

    assert sse("today", "<p>\n1 lượt\n</p>", "today:0123456789abcdef") == \
        "event: today\nid: today:0123456789abcdef\ndata: <p>\ndata: 1 lượt\ndata: </p>\n\n"


def test_a_reconnecting_stream_sends_what_changed_after_the_last_event_id(hub_server):
    import httpx

    with httpx.Client(base_url=hub_server.url, timeout=10) as http:
        http.post("/ui/login", data={"username": "leader", "password": PASSWORDS["leader"]})
        headers = {"Last-Event-ID": "today:0000000000000000"}  # a mark older than anything now
        with http.stream("GET", "/ui/events", params={"topics": "today"}, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = (line for line in response.iter_lines() if line)
            assert next(lines) == "retry: 1000"
            event = [next(lines) for _ in range(3)]
    assert event[0] == "event: today"
    assert re.fullmatch(r"id: today:[0-9a-f]{16}", event[1]) and event[1] != "id: today:0000000000000000"
    assert event[2].startswith("data: ")


def test_a_leader_sees_and_acknowledges_a_negative_press_spike(client, hub_server):
    with hub_server.ctx.db.session() as session:
        message = "Quầy quay-2: 3/4 lượt đánh giá trong 15 phút qua là Bình thường hoặc Không hài lòng (75%)"
        alarm = alarms.raise_alarm(session, kind="negative_spike", subject="quay-2", severity="major",
                                   message=message, now=hub_server.ctx.clock(), notify=False).alarm
        session.flush()
        alarm_id = alarm.id
    login_client(client, "leader")
    page = client.get("/ui/satisfaction").text
    assert f'data-alarm="{alarm_id}"' in page and "Đánh giá tiêu cực tăng đột biến" in page
    response = client.post(f"/ui/alarms/{alarm_id}/acknowledge", data={CSRF_FIELD: _csrf(client),
                                                                       "next": "/ui/satisfaction"})
    assert response.headers["location"] == "/ui/satisfaction"
    assert "Đã xác nhận bởi leader" in client.get("/ui/satisfaction").text
    with hub_server.ctx.db.session() as session:
        assert session.get(Alarm, alarm_id).acknowledged_by == "leader"
        alarms.clear_alarm(session, kind="negative_spike", subject="quay-2", now=hub_server.ctx.clock(),
                           notify=False)


# -- the audit log page (Nhật ký quản trị) ----------------------------------------------------
def test_a_user_created_on_the_users_page_appears_in_the_audit_log_with_who_created_it(client):
    login_client(client, "admin")
    client.post("/ui/users", data={"username": "nhat-ky-1", "role": "it", "password": "12345678abc",
                                   CSRF_FIELD: _csrf(client)})
    page = client.get("/ui/audit", params={"subject": "nhat-ky-1"}).text
    row = page.split('data-subject="user:nhat-ky-1"', 1)[1].split("</tr>", 1)[0]
    assert 'data-action="user.create"' in page
    assert "Tạo người dùng" in row and "<b>admin</b>" in row and "role: it" in row


def test_the_audit_page_exports_what_its_filter_selects(client, hub_server):
    with hub_server.ctx.db.session() as session:
        for name in ("xuat-1", "xuat-2"):
            audit.record(session, actor=SYSTEM, action="site.create", subject=f"site:{name}")
        audit.record(session, actor=SYSTEM, action="zone.create", subject="zone:xuat-3")
    login_client(client, "admin")
    page = client.get("/ui/audit", params={"area": "site", "subject": "xuat-"})
    href = re.search(r'href="(/ui/audit/export\?[^"]*format=csv[^"]*)"', page.text).group(1)
    rows = list(csv.reader(io.StringIO(client.get(html.unescape(href)).content.decode("utf-8-sig"))))
    assert sorted(r[4] for r in rows[1:]) == ["site:xuat-1", "site:xuat-2"]


def test_the_audit_page_shows_fifty_entries_a_page_and_links_the_next(client, hub_server):
    with hub_server.ctx.db.session() as session:
        for i in range(51):
            audit.record(session, actor=SYSTEM, action="counter.create", subject=f"counter:trang-{i}")
    login_client(client, "admin")
    first = client.get("/ui/audit", params={"subject": "counter:trang-"}).text
    second = client.get("/ui/audit", params={"subject": "counter:trang-", "page": "2"}).text
    assert (first.count("<tr data-action="), second.count("<tr data-action=")) == (50, 1)
    assert 'rel="next"' in first and "Trang 1 / 2" in first and 'rel="prev"' in second


def test_an_audit_period_that_ends_before_it_starts_is_explained(client):
    login_client(client, "admin")
    response = client.get("/ui/audit", params={"start": "2026-03-10", "end": "2026-03-01"})
    assert response.status_code == 422
    assert "Ngày kết thúc phải sau ngày bắt đầu" in response.text
