"""The UI in a real browser: Debian's Chromium, headless, driven by Selenium against the hub
served on a loopback port. Each test saves a screenshot under var/test-artifacts/web/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from sqlalchemy import select

from support import wait_until
from thanthien.hub.db.models import Alarm, User
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import health, reports, users
from thanthien.hub.web import periods
from web.pages import attr, css, css_all, live_connected, log_in, menu, overflow_px, text, visible, wait
from web.town import CAMERA_REASON, COUNTERS, FULL_NAMES, OFFICER, PASSWORDS, TZ, press, state, survey_years

MENUS = {
    "admin": ["Trang chủ", "Tình trạng thiết bị", "Thêm thiết bị", "Cập nhật phần mềm", "Mức độ hài lòng",
              "Lịch phát thanh", "Thư viện âm thanh", "Phát trực tiếp", "Tổng hợp toàn tỉnh", "Xã, phường",
              "Người dùng", "Nhật ký quản trị", "Hồ sơ một cửa", "Đánh giá qua tin nhắn", "Tin nhắn",
              "Người nhận cảnh báo", "Danh mục", "Lịch trực", "Phản ánh của dân"],
    "officer": ["Trang chủ", "Lịch phát thanh", "Thư viện âm thanh", "Phát trực tiếp", "Hồ sơ một cửa",
                "Lịch trực"],
    "it": ["Trang chủ", "Tình trạng thiết bị", "Thêm thiết bị", "Cập nhật phần mềm", "Lịch phát thanh",
           "Danh mục", "Phản ánh của dân"],
    "leader": ["Trang chủ", "Mức độ hài lòng", "Lịch phát thanh", "Thư viện âm thanh", "Phát trực tiếp",
               "Tổng hợp toàn tỉnh", "Đánh giá qua tin nhắn", "Lịch trực"],
}
NAMES = FULL_NAMES


def vn(value: float | None) -> str:
    """A number as the pages print it (one decimal, decimal comma)."""
    return "—" if value is None else f"{value:.1f}".replace(".", ",")


def today_period(hub_server) -> periods.Period:
    day = periods.today(hub_server.ctx.clock(), TZ)
    return periods.Period(day, day, TZ)


@pytest.mark.parametrize("role", ["admin", "officer", "it", "leader"])
def test_each_role_logs_in_and_gets_the_menu_of_its_pages(browser, hub_server, shot, role):
    log_in(browser, hub_server.url, role)
    assert browser.current_url.endswith("/ui/")
    assert css(browser, "h1").text == f"Xin chào, {NAMES[role]}"
    assert menu(browser) == MENUS[role]
    shot(browser, "home")


def test_wrong_password_is_refused_with_a_message(browser, hub_server, shot):
    log_in(browser, hub_server.url, "leader", password="sai-mat-khau")
    assert css(browser, ".notice.error").text == "Sai tên đăng nhập hoặc mật khẩu"
    assert "/ui/login" in browser.current_url
    shot(browser, "refused")


def test_officer_does_not_see_the_users_page(browser, hub_server, shot):
    log_in(browser, hub_server.url, "officer")
    assert "Người dùng" not in menu(browser)
    browser.get(hub_server.url + "/ui/users")
    assert css(browser, "h1").text == "Không có quyền truy cập"
    assert "Quản trị hệ thống" in css(browser, ".refusal").text
    assert not css_all(browser, "table.users")
    shot(browser, "refused")


def test_node_going_offline_turns_red_on_the_health_page_without_a_reload(browser, hub_server, shot):
    ctx = hub_server.ctx
    log_in(browser, hub_server.url, "it")
    browser.get(hub_server.url + "/ui/health")
    row = '.node-row[data-node="node-c"]'
    live_connected(browser)
    assert attr(browser, row, "data-state") == "online"
    browser.execute_script("window.notReloaded = true")
    with ctx.db.session() as session:
        health.apply_node_state(session, state=state("node-c", "lost", ctx.clock(), session=5),
                                now=ctx.clock(), notify=False)
    try:
        wait(browser).until(lambda d: attr(d, row, "data-state") == "lost")
        assert browser.execute_script("return window.notReloaded") is True
        badge = css(browser, f"{row} .badge")
        assert badge.text == "Mất kết nối"
        assert badge.value_of_css_property("background-color") == "rgba(198, 40, 40, 1)"  # var(--bad)
        alarms_region = '[data-live="health-alarms"]'
        wait(browser).until(lambda d: "Hộp đánh giá quầy 2 mất kết nối" in text(d, alarms_region))
        shot(browser, "offline")
    finally:
        with ctx.db.session() as session:
            health.apply_node_state(session, state=state("node-c", "online", ctx.clock(), session=6),
                                    now=ctx.clock(), notify=False)


def test_health_page_shows_each_camera_with_its_state_and_reason(browser, hub_server, shot):
    log_in(browser, hub_server.url, "it")
    browser.get(hub_server.url + "/ui/health")
    camera = css(browser, '.node-row[data-node="node-a"] [data-camera="cam-1"]')
    assert camera.get_attribute("data-camera-state") == "frozen"
    assert "Đứng hình" in camera.text and CAMERA_REASON in camera.text
    assert css(browser, 'b[data-camera-count="frozen"]').text == "1"
    shot(browser, "camera")


def test_it_acknowledges_an_open_alarm(browser, hub_server, shot):
    ctx = hub_server.ctx
    with ctx.db.session() as session:
        alarm_id = session.scalar(select(Alarm.id).where(
            Alarm.kind == "node_offline", Alarm.subject == "node-d", Alarm.cleared_at.is_(None)))
    log_in(browser, hub_server.url, "it")
    browser.get(hub_server.url + "/ui/health")
    item = f'.alarm[data-alarm="{alarm_id}"]'
    assert "Loa tổ dân phố 3 mất kết nối" in css(browser, item).text
    css(browser, f"{item} button").click()
    assert visible(browser, ".notice").text == "Đã xác nhận cảnh báo"
    assert "Đã xác nhận bởi it" in css(browser, item).text
    with ctx.db.session() as session:
        assert session.get(Alarm, alarm_id).acknowledged_by == "it"
    shot(browser, "acknowledged")


def test_node_page_shows_telemetry_charts_and_the_history_of_states(browser, hub_server, shot):
    log_in(browser, hub_server.url, "it")
    browser.get(hub_server.url + "/ui/nodes/node-a?range=24h")
    chart = css(browser, 'figure[data-series="cpu_temp_c"]')
    assert chart.find_element(By.TAG_NAME, "figcaption").text == "Nhiệt độ CPU (°C)"
    assert int(chart.get_attribute("data-points")) >= 48  # a sample every 30 minutes for a day
    assert chart.find_elements(By.CSS_SELECTOR, "svg polyline")
    browser.execute_script("arguments[0].scrollIntoView()", chart)
    shot(browser, "node-a")
    browser.get(hub_server.url + "/ui/nodes/node-d?range=24h")
    history = css(browser, "table.history tbody tr")
    assert "Mất kết nối" in history.text and "mất kết nối đột ngột" in history.text


def test_leader_sees_todays_presses_and_the_counts_by_counter_and_officer(browser, hub_server, shot):
    town, today = hub_server.town, today_period(hub_server)
    log_in(browser, hub_server.url, "leader")
    browser.get(hub_server.url + "/ui/satisfaction")
    counts = town.counts(start=today.start, end=today.end)
    assert css(browser, 'b[data-today="total"]').text == str(sum(counts.values()))
    quay1 = town.counts(start=today.start, end=today.end, counter="quay-1")
    cells = [c.text for c in css_all(browser, 'table.today tr[data-counter="quay-1"] td.num')]
    assert cells[:5] == [str(quay1[4]), str(quay1[3]), str(quay1[2]), str(quay1[1]), str(sum(quay1.values()))]
    assert cells[5].endswith(vn(reports.satisfaction_index(quay1)))

    browser.find_element(By.LINK_TEXT, "Quý trước").click()
    last = periods.quarter_of(today.first, TZ, back=1)
    assert css(browser, "section h2 + nav + form + p b[data-period=total]").text == \
        str(sum(town.counts(start=last.start, end=last.end).values()))
    for code in COUNTERS:
        expected = town.counts(start=last.start, end=last.end, counter=code)
        row = css(browser, f'table.by-counter tr[data-counter="{code}"]')
        assert [c.text for c in row.find_elements(By.CSS_SELECTOR, "td.num")][:5] == \
            [str(expected[lv]) for lv in (4, 3, 2, 1)] + [str(sum(expected.values()))]
    officer_rows = {r.find_element(By.TAG_NAME, "td").text: r
                    for r in css_all(browser, "table.by-officer tbody tr")}
    lan = town.counts(start=last.start, end=last.end, counter="quay-1")  # she staffs quay-1
    assert officer_rows[OFFICER].find_elements(By.CSS_SELECTOR, "td.total")[0].text == str(sum(lan.values()))
    assert "(chưa phân công)" in officer_rows
    shot(browser, "last-quarter")


def test_a_new_press_arrives_live_on_the_satisfaction_page(browser, hub_server, shot):
    town, ctx = hub_server.town, hub_server.ctx
    log_in(browser, hub_server.url, "leader")
    browser.get(hub_server.url + "/ui/satisfaction")
    live_connected(browser)
    browser.execute_script("window.notReloaded = true")
    before = int(text(browser, 'b[data-today="total"]'))
    press(ctx, town, counter="quay-2", score=3, at=ctx.clock())
    wait(browser).until(lambda d: text(d, 'b[data-today="total"]') == str(before + 1))
    assert browser.execute_script("return window.notReloaded") is True
    shot(browser, "live-press")


def test_trend_by_month_over_last_quarter(browser, hub_server, shot):
    town = hub_server.town
    last = periods.quarter_of(periods.today(hub_server.ctx.clock(), TZ), TZ, back=1)
    log_in(browser, hub_server.url, "leader")
    browser.get(hub_server.url + f"/ui/satisfaction?start={last.first}&end={last.last}")
    browser.find_element(By.LINK_TEXT, "Theo tháng").click()
    wait(browser).until(lambda d: "trend=month" in d.current_url)
    rows = css_all(browser, "table.trend tbody tr")
    months = [periods.month(last.first.year, last.first.month + i, TZ) for i in range(3)]
    assert [r.get_attribute("data-period") for r in rows] == [f"{m.first:%Y-%m}" for m in months]
    for row, month in zip(rows, months, strict=True):
        expected = town.counts(start=month.start, end=month.end)
        assert row.find_element(By.CSS_SELECTOR, "td.total").text == str(sum(expected.values()))
    assert len(css_all(browser, "svg.chart rect.bar")) == 3
    browser.execute_script("arguments[0].scrollIntoView()", css(browser, "table.trend"))
    shot(browser, "trend")


def _downloaded(folder: Path, suffix: str) -> list[Path]:
    return [p for p in folder.iterdir() if p.suffix == suffix]


def test_leader_downloads_the_xlsx_of_last_quarter_and_it_reads_back(browser, hub_server, shot):
    town = hub_server.town
    folder: Path = browser.downloads
    for old in folder.iterdir():
        old.unlink()
    log_in(browser, hub_server.url, "leader")
    browser.get(hub_server.url + "/ui/satisfaction")
    browser.find_element(By.LINK_TEXT, "Quý trước").click()
    shot(browser, "before-export")
    css(browser, 'a[data-export="xlsx-counter"]').click()
    assert wait_until(lambda: len(_downloaded(folder, ".xlsx")) == 1, timeout=15), list(folder.iterdir())
    sheet = load_workbook(_downloaded(folder, ".xlsx")[0]).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    last = periods.quarter_of(periods.today(hub_server.ctx.clock(), TZ), TZ, back=1)
    assert last.label in rows[0][0]
    assert rows[1] == ["Quầy", "Rất hài lòng", "Hài lòng", "Bình thường", "Không hài lòng", "Tổng số lượt",
                       "Chỉ số hài lòng (0–100)"]
    for code, name in COUNTERS.items():
        expected = town.counts(start=last.start, end=last.end, counter=code)
        row = next(r for r in rows[2:] if r[0] == f"{name} ({code})")
        assert row[1:6] == [expected[4], expected[3], expected[2], expected[1], sum(expected.values())]
        assert row[6] == reports.satisfaction_index(expected)


def test_two_survey_rounds_side_by_side(browser, hub_server, shot):
    town = hub_server.town
    october, march = survey_years(periods.today(hub_server.ctx.clock(), TZ))
    log_in(browser, hub_server.url, "leader")
    browser.get(hub_server.url + "/ui/satisfaction")
    for name, value in (("a_start", october.first), ("a_end", october.last), ("b_start", march.first),
                        ("b_end", march.last)):
        field = css(browser, f'.compare-form input[name="{name}"]')
        browser.execute_script("arguments[0].value = arguments[1]", field, value.isoformat())
    css(browser, ".compare-form button").click()
    wait(browser).until(lambda d: "a_start" in d.current_url)
    for code in COUNTERS:
        a = reports.satisfaction_index(town.counts(start=october.start, end=october.end, counter=code))
        b = reports.satisfaction_index(town.counts(start=march.start, end=march.end, counter=code))
        cells = [c.text for c in css_all(browser, f'table.compare tr[data-counter="{code}"] td.num')]
        assert cells[0].startswith(vn(a)) and cells[1].startswith(vn(b))
        change = round(b - a, 1)
        assert cells[2] == ("+" if change > 0 else "") + vn(change).replace("-", "−")
    browser.execute_script("arguments[0].scrollIntoView()", css(browser, "table.compare"))
    shot(browser, "compare")


def _user_row(browser, username: str):
    return css(browser, f'table.users tr[data-user="{username}"]')


def test_admin_creates_a_user_who_can_then_log_in(browser, hub_server, shot):
    log_in(browser, hub_server.url, "admin")
    browser.get(hub_server.url + "/ui/users")
    form = css(browser, "#create-user")
    form.find_element(By.NAME, "username").send_keys("cb-moi")
    form.find_element(By.NAME, "full_name").send_keys("Hoàng Văn Mới")
    Select(form.find_element(By.NAME, "role")).select_by_visible_text("Cán bộ kỹ thuật (CNTT)")
    form.find_element(By.NAME, "password").send_keys("mat-khau-moi-1")
    form.find_element(By.TAG_NAME, "button").click()
    assert visible(browser, ".notice").text == "Đã tạo người dùng cb-moi (Cán bộ kỹ thuật (CNTT))"
    assert "Hoàng Văn Mới" in _user_row(browser, "cb-moi").text
    shot(browser, "created")
    browser.delete_all_cookies()
    log_in(browser, hub_server.url, "cb-moi", password="mat-khau-moi-1")
    assert menu(browser) == MENUS["it"]


def _make_user(hub_server, username: str, role: str = "officer") -> None:
    with hub_server.ctx.db.session() as session:
        users.create_user(session, actor=SYSTEM, username=username, password="mat-khau-cu-1", role=role,
                          now=hub_server.ctx.clock())


def test_admin_changes_a_role(browser, hub_server, shot):
    _make_user(hub_server, "doi-vai-tro")
    log_in(browser, hub_server.url, "admin")
    browser.get(hub_server.url + "/ui/users")
    Select(_user_row(browser, "doi-vai-tro").find_element(By.NAME, "role")).select_by_value("leader")
    _user_row(browser, "doi-vai-tro").find_element(By.XPATH, ".//button[.='Đổi vai trò']").click()
    assert visible(browser, ".notice").text == "Đã đổi vai trò của doi-vai-tro thành Lãnh đạo"
    with hub_server.ctx.db.session() as session:
        assert session.scalar(select(User.role).where(User.username == "doi-vai-tro")) == "leader"
    shot(browser, "role")


def test_admin_disables_a_user_who_then_cannot_log_in(browser, hub_server, shot):
    _make_user(hub_server, "bi-khoa")
    log_in(browser, hub_server.url, "admin")
    browser.get(hub_server.url + "/ui/users")
    _user_row(browser, "bi-khoa").find_element(By.CSS_SELECTOR, 'button[data-action="disable"]').click()
    alert = wait(browser).until(lambda d: d.switch_to.alert)
    assert alert.text == "Khóa tài khoản bi-khoa?"
    alert.accept()
    assert visible(browser, ".notice").text == "Đã khóa tài khoản bi-khoa"
    assert _user_row(browser, "bi-khoa").find_element(By.CSS_SELECTOR, ".user-state").text == "Đã khóa"
    shot(browser, "disabled")
    browser.delete_all_cookies()
    log_in(browser, hub_server.url, "bi-khoa", password="mat-khau-cu-1")
    assert css(browser, ".notice.error").text == "Sai tên đăng nhập hoặc mật khẩu"


def test_admin_resets_a_password_and_only_the_new_one_works(browser, hub_server, shot):
    _make_user(hub_server, "quen-mat-khau")
    log_in(browser, hub_server.url, "admin")
    browser.get(hub_server.url + "/ui/users")
    _user_row(browser, "quen-mat-khau").find_element(By.CSS_SELECTOR, 'button[data-action="reset"]').click()
    wait(browser).until(lambda d: d.switch_to.alert).accept()
    notice = visible(browser, "#notice").text
    match = re.match(r"Mật khẩu mới của quen-mat-khau: (\S+) — ", notice)
    assert match, notice
    shot(browser, "reset")
    browser.delete_all_cookies()
    log_in(browser, hub_server.url, "quen-mat-khau", password="mat-khau-cu-1")
    assert css_all(browser, ".notice.error")
    log_in(browser, hub_server.url, "quen-mat-khau", password=match.group(1))
    assert menu(browser) == MENUS["officer"]


PHONE_PAGES = {
    "admin": ["/ui/", "/ui/health", "/ui/nodes/node-a", "/ui/satisfaction", "/ui/users", "/ui/audit"],
    "officer": ["/ui/", "/ui/users", "/ui/broadcasts", "/ui/media", "/ui/live"],
    "it": ["/ui/health", "/ui/nodes/node-d", "/ui/releases", "/ui/faults"],
    "leader": ["/ui/satisfaction"],
}


@pytest.mark.parametrize("role", list(PHONE_PAGES))
def test_every_page_fits_a_390_px_phone(browser, hub_server, shot, role):
    log_in(browser, hub_server.url, role)
    browser.set_window_size(390, 844)
    for path in PHONE_PAGES[role]:
        browser.get(hub_server.url + path)
        assert css(browser, "h1").text
        assert overflow_px(browser) <= 0, f"{path} is wider than 390 px"
        name = "phone" + path.replace("/", "-").rstrip("-")
        shot(browser, name)
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        shot(browser, name + "-end")


def test_login_page_fits_a_390_px_phone(browser, hub_server, shot):
    browser.set_window_size(390, 844)
    browser.get(hub_server.url + "/ui/health")
    assert "/ui/login" in browser.current_url
    assert css(browser, "h1").text == "Đăng nhập"
    assert overflow_px(browser) <= 0
    shot(browser, "phone-login")


def test_the_page_asked_for_opens_after_logging_in(browser, hub_server):
    browser.get(hub_server.url + "/ui/nodes/node-a?range=6h")
    assert "/ui/login?next=" in browser.current_url
    css(browser, "input[name=username]").send_keys("it")
    css(browser, "input[name=password]").send_keys(PASSWORDS["it"])
    css(browser, "form button[type=submit]").click()
    wait(browser).until(lambda d: d.current_url.endswith("/ui/nodes/node-a?range=6h"))
    assert css(browser, "h1").text.startswith("Hộp đánh giá quầy 1")
    assert "6 giờ qua" in css(browser, ".card h2 + nav").find_element(By.XPATH, "..").text

