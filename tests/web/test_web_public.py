"""The public page and a resident's fault report, without login: what it shows, that it shows
no personal data, and the ticket IT answer (the seeded town on SQLite; Chromium at 390 px)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By

from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import ratings, reports
from web.conftest import login_client
from web.pages import css, overflow_px, wait
from web.town import COUNTERS, FULL_NAMES, OFFICER, PASSWORDS

PHONE = re.compile(r"(\+84|\b0)[35789]\d{8}\b")


def _personal(html: str) -> list[str]:
    names = [*FULL_NAMES.values(), OFFICER, *PASSWORDS.values()]
    return [n for n in names if n in html] + PHONE.findall(html)


def test_the_public_page_opens_without_login_with_each_counter_and_the_devices(client):
    response = client.get("/p/")
    assert response.status_code == 200
    html = response.text
    for name in COUNTERS.values():
        assert name in html
    assert "Cụm loa hoạt động" in html and "Camera bình thường" in html
    assert 'href="/ui/' not in html.split("</header>")[0].split("brand")[1][:40]


def test_the_public_page_holds_no_names_or_phone_numbers(client):
    assert _personal(client.get("/p/").text) == []


def test_the_counter_index_on_the_public_page_is_this_months(client, hub_server):
    tz = hub_server.ctx.settings.hub.timezone
    now = hub_server.ctx.clock()
    start = now.astimezone(ZoneInfo(tz)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with hub_server.ctx.db.session(write=False) as s:
        rows = reports.summarize(s, viewer=SYSTEM, group_by=["counter"], tz=tz,
                                 flt=ratings.RatingFilter(start=start, end=now))
    shown = {r.key["counter"]: f"{r.index:.1f}".replace(".", ",") for r in rows if r.index is not None}
    assert shown, "the seeded town has presses this month"
    html = client.get("/p/").text
    for code, index in shown.items():
        row = rf'{re.escape(COUNTERS[code])}</td><td data-label="Chỉ số hài lòng">{index}/100'
        assert re.search(row, html), (code, index)


def test_a_resident_reports_a_fault_and_reads_its_answer_on_the_ticket_page(client):
    form = client.get("/p/loa/node-b/loa-1")
    assert form.status_code == 200 and "Bản Nà Hin" in form.text
    sent = client.post("/p/loa/node-b/loa-1", data={"kind": "too_loud", "message": "Loa to quá lúc 5 giờ"})
    assert sent.status_code == 303
    ticket_url = sent.headers["location"]
    code = ticket_url.split("/")[-1].split("?")[0]
    assert "Đang chờ xử lý" in client.get(ticket_url).text
    it = login_client(client, "it")
    page = it.get("/ui/faults")
    assert code in page.text
    report_id = re.search(rf'id="p(\d+)">\s*<h2>{code}', page.text).group(1)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answered = it.post(f"/ui/faults/{report_id}/answer", data={"answer": "Đã giảm âm lượng buổi sáng.",
                                                                "csrf": token})
    assert answered.status_code == 303
    client.cookies.clear()
    public = client.get(ticket_url)
    assert "Đã trả lời" in public.text and "Đã giảm âm lượng buổi sáng." in public.text
    assert _personal(public.text) == []


def test_a_report_without_a_kind_is_refused_with_the_form_again(client):
    response = client.post("/p/loa/node-b/loa-1", data={"kind": "", "message": "abc"})
    assert response.status_code == 422
    assert "Hãy chọn một vấn đề" in response.text and "abc" in response.text


def test_a_qr_code_of_an_unknown_speaker_says_so(client):
    response = client.get("/p/loa/node-b/khong-co")
    assert response.status_code == 404 and "quét lại mã QR" in response.text


def test_it_gets_a_printable_qr_code_for_each_speaker_pole(client):
    it = login_client(client, "it")
    page = it.get("/ui/faults/qr/node-d/loa-3")
    assert page.status_code == 200 and "<svg" in page.text and "/p/loa/node-d/loa-3" in page.text


@pytest.mark.usefixtures("hub_server")
def test_the_public_page_and_the_report_form_fit_a_390_px_phone(browser, hub_server, shot):
    browser.set_window_size(390, 844)
    for path in ("/p/", "/p/loa/node-d/loa-3"):
        browser.get(hub_server.url + path)
        assert css(browser, "h1").text
        assert overflow_px(browser) <= 0, f"{path} is wider than 390 px"
        assert _personal(browser.page_source) == []
        shot(browser, "phone" + path.replace("/", "-").rstrip("-"))
    browser.find_element(By.CSS_SELECTOR, "input[value=broken]").click()
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(browser).until(lambda d: "/p/phan-anh/" in d.current_url)  # the answer page, once it has loaded
    assert "Đã nhận phản ánh" in css(browser, ".notice").text
