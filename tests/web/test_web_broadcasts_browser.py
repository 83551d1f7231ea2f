"""The broadcast pages in a real browser: an officer renders a Vietnamese announcement with
TTS, schedules it for tomorrow 07:00 on one hamlet and finds it on the calendar; a time in
quiet hours is refused with the reason shown."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from web.pages import css, log_in, visible, wait
from web.town import TZ

LOCAL = ZoneInfo(TZ)

TEXT = "Đài truyền thanh thị trấn thông báo: {title}, xin bà con chú ý."


def _tomorrow_at(hub_server, hour: int, minute: int = 0) -> str:
    day = hub_server.ctx.clock().astimezone(LOCAL).date() + timedelta(days=1)
    return f"{day:%Y-%m-%d}T{hour:02d}:{minute:02d}"


def _render_tts(browser, hub_server, title: str) -> None:
    browser.get(hub_server.url + "/ui/media")
    form = css(browser, "form#tts")
    form.find_element(By.NAME, "title").send_keys(title)
    form.find_element(By.NAME, "text").send_keys(TEXT.format(title=title.lower()))  # own audio each
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "Đã tạo bản đọc" in visible(browser, ".notice").text


def _fill_broadcast(browser, title: str, media_title: str, when: str) -> None:
    form = css(browser, "form#create-broadcast")
    form.find_element(By.NAME, "title").send_keys(title)
    media = Select(form.find_element(By.NAME, "media_sha256"))
    media.select_by_visible_text(next(o.text for o in media.options if o.text.startswith(media_title)))
    Select(form.find_element(By.NAME, "target_kind")).select_by_value("zones")
    form.find_element(By.CSS_SELECTOR, 'input[name="target_zones"][value="ban-na-hin"]').click()
    Select(form.find_element(By.NAME, "schedule_kind")).select_by_value("once")
    start = form.find_element(By.NAME, "start_at")
    browser.execute_script("arguments[0].value = arguments[1]", start, when)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_officer_schedules_a_tts_broadcast_for_tomorrow_and_finds_it_on_the_calendar(
        browser, hub_server, shot):
    log_in(browser, hub_server.url, "officer")
    _render_tts(browser, hub_server, "Thông báo tiêm phòng")
    browser.get(hub_server.url + "/ui/broadcasts")
    _fill_broadcast(browser, "Tiêm phòng cho trẻ em", "Thông báo tiêm phòng", _tomorrow_at(hub_server, 7))
    assert "Đã lưu bản nháp" in visible(browser, ".notice").text
    broadcast_id = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
    browser.get(hub_server.url + "/ui/broadcasts")
    entry = css(browser, f'#calendar li[data-broadcast="{broadcast_id}"]')
    assert "07:00" in entry.text and "Tiêm phòng cho trẻ em" in entry.text
    assert "bản nháp" in entry.text and "1 cụm loa" in entry.text  # Bản Nà Hin has one speaker
    shot(browser, "calendar")


def test_a_time_in_quiet_hours_is_refused_with_the_message_shown(browser, hub_server, shot):
    log_in(browser, hub_server.url, "officer")
    _render_tts(browser, hub_server, "Thông báo muộn")
    browser.get(hub_server.url + "/ui/broadcasts")
    _fill_broadcast(browser, "Thông báo lúc 22 giờ", "Thông báo muộn", _tomorrow_at(hub_server, 22))
    notice = wait(browser).until(lambda d: d.find_element(By.ID, "notice"))
    assert "giờ yên tĩnh" in notice.text and "21:30" in notice.text
    kept = css(browser, 'form#create-broadcast input[name="title"]').get_attribute("value")
    assert kept == "Thông báo lúc 22 giờ"  # the form is kept for a correction
    shot(browser, "quiet-hours")
