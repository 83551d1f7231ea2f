"""The dossier, SMS and alarm-contact pages in a real browser (Chromium, headless): they fit a
390 px phone, and an officer records a dossier at the counter from one."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import dossiers, paging
from web.pages import css, log_in, overflow_px, visible, wait
from web.town import TZ

PAGES = {
    "officer": ["/ui/dossiers", "/ui/dossiers/WEB-0001"],
    "admin": ["/ui/sms", "/ui/contacts", "/ui/dossiers"],
    "leader": ["/ui/dossier-ratings"],
}


@pytest.fixture
def dossier(hub_server) -> str:
    ctx = hub_server.ctx
    with ctx.db.session() as s:
        if s.query(dossiers.Dossier).filter_by(code="WEB-0001").first() is None:
            d = dossiers.create(
                s,
                actor=SYSTEM,
                code="WEB-0001",
                procedure="Chứng thực chữ ký trên giấy tờ",
                citizen_name="Lò Thị Én",
                phone="0912345678",
                counter=None,
                officer_id=None,
                due_at=None,
                source="counter",
                now=ctx.clock(),
                tz=TZ,
                cfg=ctx.settings.sms,
            )
            dossiers.record_event(
                s,
                actor=SYSTEM,
                dossier=d,
                kind="supplement",
                note="ban sao giay khai sinh",
                key=None,
                now=ctx.clock(),
                tz=TZ,
                cfg=ctx.settings.sms,
            )
        if not paging.list_contacts(s, viewer=SYSTEM):
            paging.create_contact(
                s,
                actor=SYSTEM,
                name="Cà Văn Tuấn",
                audience="it",
                phone="0988000001",
                email="tuan@ubnd.test",
                quiet_start="22:00",
                quiet_end="06:00",
            )
    return "WEB-0001"


@pytest.mark.parametrize("role", list(PAGES))
def test_the_notice_pages_fit_a_390_px_phone(browser, hub_server, shot, role, dossier):
    log_in(browser, hub_server.url, role)
    browser.set_window_size(390, 844)
    for path in PAGES[role]:
        browser.get(hub_server.url + path)
        assert css(browser, "h1").text
        assert overflow_px(browser) <= 0, f"{path} is wider than 390 px"
        shot(browser, "phone" + path.replace("/", "-"))


def test_an_officer_records_a_dossier_from_a_phone_and_sees_its_notice_queued(browser, hub_server, shot):
    log_in(browser, hub_server.url, "officer")
    browser.set_window_size(390, 844)
    browser.get(hub_server.url + "/ui/dossiers")
    form = css(browser, "#create-dossier")
    for name, value in (
        ("code", "WEB-0002"),
        ("procedure", "Đăng ký khai sinh"),
        ("citizen_name", "Quàng Văn A"),
        ("phone", "0388 123 456"),
    ):
        form.find_element(By.NAME, name).send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser).until(lambda d: d.current_url.endswith("/ui/dossiers/WEB-0002"))
    assert "Đang chờ gửi" in visible(browser, "tr[data-event=received] .sms-state").text
    shot(browser, "phone-dossier-recorded")


def test_the_template_editor_counts_parts_while_the_admin_types(browser, hub_server, shot):
    log_in(browser, hub_server.url, "admin")
    browser.get(hub_server.url + "/ui/sms")
    body = css(browser, "#mau-received textarea[name=body]")
    body.clear()
    body.send_keys("x" * 200)
    assert "2 tin" in css(browser, "#mau-received .sms-cost").text
    css(browser, "#mau-received input[name=unicode]").click()
    body.send_keys("ơ")
    assert "có dấu (UCS-2)" in css(browser, "#mau-received .sms-cost").text
    shot(browser, "sms-editor")
