"""Zone rules and the listen-through in a real browser (Chromium, headless): the rule pages,
the calendar's minutes per zone and the dictionary fit a 390 px phone; an admin sets a zone's
slots from one; a leader can approve a TTS bulletin only after playing it to the end."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By

from thanthien.hub.roles import OFFICER, SYSTEM, ActingUser
from thanthien.hub.services import broadcasts, media_items, zone_rules
from thanthien.hub.services.zone_rules import RuleSpec
from web.pages import css, css_all, log_in, overflow_px, visible, wait
from web.town import TZ

PAGES = {
    "admin": ["/ui/registry/places", "/ui/registry/rules", "/ui/registry/rules/zone/to-3",
              "/ui/registry/rules/node/node-d", "/ui/media"],
    "officer": ["/ui/broadcasts"],
}


@pytest.fixture
def to3_rule(hub_server):
    """Whatever a test sets for Tổ dân phố 3 is undone after it (the hub serves the whole session)."""
    yield
    ctx = hub_server.ctx
    with ctx.db.session() as s:
        zone_rules.set_rule(s, actor=SYSTEM, where=zone_rules.scope(s, viewer=SYSTEM, zone="to-3"),
                            spec=RuleSpec(),
                            now=ctx.clock(), tz=ZoneInfo(TZ), cfg=ctx.settings.broadcasts)


@pytest.mark.parametrize("role", list(PAGES))
def test_the_rule_pages_fit_a_390_px_phone(browser, hub_server, shot, role):
    log_in(browser, hub_server.url, role)
    browser.set_window_size(390, 844)
    for path in PAGES[role]:
        browser.get(hub_server.url + path)
        assert css(browser, "h1").text
        assert overflow_px(browser) <= 0, f"{path} is wider than 390 px"
        shot(browser, "phone" + path.replace("/", "-"))


def test_the_calendar_shows_each_zones_minutes_per_day(browser, hub_server):
    log_in(browser, hub_server.url, "officer")
    browser.get(hub_server.url + "/ui/broadcasts")
    rows = {r.get_attribute("data-zone") for r in css_all(browser, "#zone-minutes tr[data-zone]")}
    assert {"ban-na-hin", "to-3"} <= rows
    assert len(css_all(browser, '#zone-minutes tr[data-zone="to-3"] td[data-day]')) == 7


def test_an_admin_sets_a_zones_slots_from_a_phone_and_the_registry_shows_them(browser, hub_server, shot,
                                                                              to3_rule):
    log_in(browser, hub_server.url, "admin")
    browser.set_window_size(390, 844)
    browser.get(hub_server.url + "/ui/registry/rules/zone/to-3")
    form = css(browser, "form#rule-form")
    form.find_element(By.CSS_SELECTOR, 'input[name="slots_mode"][value="set"]').click()
    form.find_element(By.NAME, "slots").send_keys("05:30 60, 17:00 60")
    form.find_element(By.CSS_SELECTOR, 'input[name="minutes_mode"][value="set"]').click()
    form.find_element(By.NAME, "daily_minutes").send_keys("90")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "Đã lưu quy định phát của khu vực Tổ dân phố 3" in visible(browser, ".notice").text
    effective = css(browser, "#effective").text
    assert "Khung giờ: 05:30 (60 phút), 17:00 (60 phút)" in effective and "Tối đa 90 phút/ngày" in effective
    shot(browser, "phone-zone-rule-saved")
    browser.get(hub_server.url + "/ui/registry/places")
    assert "05:30 (60 phút)" in css(browser, 'tr[data-zone="to-3"] .zone-rule').text


def test_a_wrong_slot_is_refused_with_the_reason_and_nothing_changes(browser, hub_server, to3_rule):
    log_in(browser, hub_server.url, "admin")
    browser.get(hub_server.url + "/ui/registry/rules/zone/to-3")
    form = css(browser, "form#rule-form")
    form.find_element(By.CSS_SELECTOR, 'input[name="slots_mode"][value="set"]').click()
    form.find_element(By.NAME, "slots").send_keys("sáng sớm")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "Không hiểu khung giờ “sáng sớm”" in visible(browser, ".notice.error").text
    assert "Không giới hạn" in css(browser, "#effective").text


def _tts_draft(hub_server) -> int:
    ctx = hub_server.ctx
    with ctx.db.session() as s:
        from thanthien.hub.services.tts import TtsRequest

        item = media_items.add_tts(s, lib=ctx.media, settings=ctx.settings.tts, username="officer",
                                   commune_id=None,
                                   request=TtsRequest(text="UBND xã mời bà con họp lúc 17h.", chime=False),
                                   title="Mời họp", now=ctx.clock())
        day = ctx.clock().astimezone(ZoneInfo(TZ)).date() + timedelta(days=2)
        spec = broadcasts.BroadcastSpec(title="Mời họp tổ", media_sha256=item.sha256, schedule_kind="daily",
                                        local_time="17:15", valid_from=f"{day}T00:00:00+07:00")
        return broadcasts.create_broadcast(s, spec=spec, actor=ActingUser("officer", OFFICER),
                                           now=ctx.clock(), tz=ZoneInfo(TZ), cfg=ctx.settings.broadcasts).id


def test_a_leader_approves_a_tts_bulletin_only_after_playing_it_to_the_end(browser, hub_server, shot):
    bid = _tts_draft(hub_server)
    log_in(browser, hub_server.url, "leader")
    browser.get(f"{hub_server.url}/ui/broadcasts/{bid}")
    assert css(browser, "#approve").get_attribute("disabled") is not None
    assert "ủy ban nhân dân xã mời bà con họp lúc mười bảy giờ" in css(browser, "#tts-spoken").text
    assert css(browser, "#listen-needed").text
    css(browser, "h1").click()  # a real click: the browser lets a page play audio only after one
    browser.execute_script("var a = document.getElementById('broadcast-audio'); a.muted = true; a.play();")
    wait(browser, 30).until(lambda d: d.find_elements(By.ID, "listened"))
    assert "Bạn đã nghe hết bản đọc" in css(browser, "#listened").text
    shot(browser, "listened")
    css(browser, "#approve").click()
    assert "Đã phê duyệt" in visible(browser, ".notice").text
