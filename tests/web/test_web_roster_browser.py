"""The registry and the duty roster in Chromium: the admin puts a counter, its officer, its rating
box and a weekly roster into service from the pages, and a press on that box, ingested the way
the hub ingests a node's message, is attributed to the officer the roster names; a change after
ratings were stored says how many move and asks first; the pages fit a 390 px phone."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hub.hub_helpers import rating_msg
from selenium.webdriver.support.ui import Select
from sqlalchemy import select

from thanthien.hub.db.models import Officer, Rating
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import registry, roster
from thanthien.protocol.payloads import RatingEvent
from web.pages import css, css_all, log_in, overflow_px, text, visible, wait
from web.town import TZ


def _set(driver, selector: str, value: str) -> None:
    """A date or time input's value as the form sends it (typing them depends on the locale)."""
    driver.execute_script("document.querySelector(arguments[0]).value = arguments[1];", selector, value)


def _press_time(now: datetime) -> datetime:
    """A few minutes ago, at most 50 minutes past its hour (so its hour's shift covers it)."""
    at = now - timedelta(minutes=5)
    return at.replace(minute=min(at.minute, 50), second=0, microsecond=0)


def _hours(at: datetime) -> tuple[str, str]:
    hour = at.astimezone(ZoneInfo(TZ)).hour
    return f"{hour:02d}:00", (f"{hour + 1:02d}:00" if hour < 23 else "23:59")


def _press(ctx, *, node: str, box: str, counter: str, at: datetime) -> int | None:
    """One press on the box, through the hub's ingest (decode, claim check, store, attribute); the
    officer the stored rating names."""
    event = RatingEvent(event_id=uuid.uuid4(), node=node, seq=1, box=box, counter=counter, score=4,
                        pressed_at=at)
    IngestWorker(ctx).process([rating_msg(event, ctx.clock())])
    with ctx.db.session(write=False) as s:
        row = s.scalar(select(Rating).where(Rating.event_id == event.event_id))
        assert row is not None, "the press was not stored"
        return row.officer_id


def _notice(driver) -> str:
    return visible(driver, "main > .notice").text


def test_the_admin_builds_a_weekly_roster_and_a_press_on_the_counters_box_goes_to_its_officer(
        browser, hub_server, shot):
    ctx, url = hub_server.ctx, hub_server.url
    tag = uuid.uuid4().hex[:6]
    node, counter, box, officer_code = f"mot-cua-{tag}", f"quay-{tag}", f"box-{tag}", f"cb-{tag}"
    with ctx.db.session() as s:  # the node itself is IT's enrollment page's (not this test's)
        registry.register_node(s, actor=SYSTEM, node_id=node, name="Một cửa tầng 2")
    log_in(browser, url, "admin")

    browser.get(url + "/ui/registry/places")
    css(browser, '#create-counter [name="code"]').send_keys(counter)
    css(browser, '#create-counter [name="name"]').send_keys("Quầy Lao động – Thương binh")
    css(browser, "#create-counter button").click()
    assert _notice(browser) == "Đã thêm quầy Quầy Lao động – Thương binh"

    browser.get(url + "/ui/registry/officers")
    css(browser, '#create-officer [name="code"]').send_keys(officer_code)
    css(browser, '#create-officer [name="full_name"]').send_keys("Điêu Thị Hương")
    css(browser, "#create-officer button").click()
    assert _notice(browser) == "Đã thêm cán bộ Điêu Thị Hương"

    browser.get(url + f"/ui/registry/devices?node={node}")
    css(browser, ".add-device summary").click()
    css(browser, '.add-device [name="code"]').send_keys(box)
    Select(css(browser, '.add-device [name="kind"]')).select_by_value("rating_box")
    Select(css(browser, '.add-device [name="counter"]')).select_by_value(counter)
    css(browser, ".add-device button").click()
    assert _notice(browser) == f"Đã lưu thiết bị {box} của nút {node}"

    pressed = _press_time(ctx.clock())
    local = pressed.astimezone(ZoneInfo(TZ))
    starts, ends = _hours(pressed)
    browser.get(url + f"/ui/roster?counter={counter}")
    Select(css(browser, '#add-pattern [name="officer_id"]')).select_by_visible_text("Điêu Thị Hương")
    for box_input in css_all(browser, '#add-pattern [name="weekdays"]'):
        if box_input.is_selected() != (box_input.get_attribute("value") == str(local.isoweekday())):
            box_input.click()
    _set(browser, '#add-pattern [name="starts"]', starts)
    _set(browser, '#add-pattern [name="ends"]', ends)
    _set(browser, '#add-pattern [name="valid_from"]', local.date().isoformat())
    css(browser, "#add-pattern button").click()
    assert _notice(browser) == "Đã lưu lịch trực."
    browser.get(url + f"/ui/roster?counter={counter}&week={local.date().isoformat()}")
    day = text(browser, f'#week tr[data-day="{local.date().isoformat()}"] .duty')
    assert day == f"{starts}–{ends} Điêu Thị Hương"
    shot(browser, "roster")

    with ctx.db.session(write=False) as s:
        officer_id = s.scalar(select(Officer.id).where(Officer.code == officer_code))
    assert _press(ctx, node=node, box=box, counter=counter, at=pressed) == officer_id


@pytest.fixture
def staffed(hub_server):
    """A counter in service with a rating box, two officers, a weekly shift of the first that
    covers a press stored a few minutes ago."""
    ctx = hub_server.ctx
    tag = uuid.uuid4().hex[:6]
    node, counter, box = f"mot-cua-{tag}", f"quay-{tag}", f"box-{tag}"
    pressed = _press_time(ctx.clock())
    starts, ends = _hours(pressed)
    with ctx.db.session() as s:
        registry.create_counter(s, actor=SYSTEM, code=counter, name=f"Quầy {tag}")
        registry.register_node(s, actor=SYSTEM, node_id=node)
        registry.upsert_device(s, actor=SYSTEM, node_id=node, code=box, kind="rating_box", counter=counter)
        first = registry.create_officer(s, actor=SYSTEM, code=f"cb-a-{tag}", full_name="Lường Văn Thắng")
        second = registry.create_officer(s, actor=SYSTEM, code=f"cb-b-{tag}", full_name="Cầm Thị Duyên")
        change = roster.new_pattern(s, actor=SYSTEM, counter=counter, officer_id=first.id,
                                    weekdays=range(1, 8), starts=starts, ends=ends,
                                    valid_from=roster.local_day(pressed, TZ), tz=TZ)
        roster.apply(s, change, actor=SYSTEM)
        ids = first.id, second.id
    assert _press(ctx, node=node, box=box, counter=counter, at=pressed) == ids[0]
    return counter, ids, pressed


def test_a_swap_after_the_press_was_stored_says_how_many_ratings_move_and_applies_once_confirmed(
        browser, hub_server, shot, staffed):
    counter, (first, second), pressed = staffed
    day = pressed.astimezone(ZoneInfo(TZ)).date().isoformat()
    log_in(browser, hub_server.url, "admin")
    browser.get(hub_server.url + f"/ui/roster?counter={counter}&week={day}")
    Select(css(browser, '#add-exception [name="kind"]')).select_by_value("swap")
    Select(css(browser, '#add-exception [name="officer_id"]')).select_by_visible_text("Cầm Thị Duyên")
    _set(browser, '#add-exception [name="first_day"]', day)
    css(browser, "#add-exception button").click()
    # the confirmation page may still be loading when the click returns: wait for it
    assert visible(browser, ".ratings-changed").get_attribute("data-count") == "1"
    assert css(browser, ".moves").text == "1 lượt: Lường Văn Thắng → Cầm Thị Duyên"
    shot(browser, "confirm")
    with hub_server.ctx.db.session(write=False) as s:  # asking changed nothing
        assert s.scalar(select(Rating.officer_id).where(Rating.counter_code == counter)) == first
    css(browser, "#apply").click()
    assert "1 lượt đánh giá đã lưu được ghi lại" in _notice(browser)
    with hub_server.ctx.db.session(write=False) as s:
        assert s.scalar(select(Rating.officer_id).where(Rating.counter_code == counter)) == second
    browser.get(hub_server.url + f"/ui/roster?counter={counter}&week={day}")
    starts, ends = _hours(pressed)
    duties = [d.text for d in css_all(browser, f'#week tr[data-day="{day}"] .duty[data-source="swap"]')]
    assert f"{starts}–{ends} Cầm Thị Duyên Đổi ca thay Lường Văn Thắng" in duties


def test_cancelling_the_question_leaves_the_roster_and_the_ratings_as_they_were(
        browser, hub_server, staffed):
    counter, (first, _second), pressed = staffed
    day = pressed.astimezone(ZoneInfo(TZ)).date().isoformat()
    log_in(browser, hub_server.url, "admin")
    browser.get(hub_server.url + f"/ui/roster?counter={counter}&week={day}")
    Select(css(browser, '#add-exception [name="officer_id"]')).select_by_visible_text("Lường Văn Thắng")
    _set(browser, '#add-exception [name="first_day"]', day)  # leave, the whole day
    css(browser, "#add-exception button").click()
    assert visible(browser, ".moves").text == "1 lượt: Lường Văn Thắng → không ai"
    css(browser, "#cancel").click()
    wait(browser).until(lambda d: "/ui/roster?" in d.current_url)
    assert css_all(browser, '#exceptions tr[data-kind="leave"]') == []
    with hub_server.ctx.db.session(write=False) as s:
        assert s.scalar(select(Rating.officer_id).where(Rating.counter_code == counter)) == first


PHONE_PAGES = ["/ui/registry/places", "/ui/registry/devices", "/ui/registry/officers", "/ui/roster"]


def test_the_registry_and_roster_pages_fit_a_390_px_phone(browser, hub_server, shot, staffed):
    counter, _ids, _pressed = staffed
    log_in(browser, hub_server.url, "admin")
    browser.set_window_size(390, 844)
    for path in PHONE_PAGES:
        browser.get(hub_server.url + path + (f"?counter={counter}" if path == "/ui/roster" else ""))
        for details in css_all(browser, "details"):  # the device forms open, as someone editing sees them
            browser.execute_script("arguments[0].open = true", details)
        assert css(browser, "h1").text
        wide = browser.execute_script(  # what sticks out, for the message
            "return Array.from(document.querySelectorAll('main *'))"
            ".filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)"
            ".map(e => e.tagName + '.' + e.className).slice(0, 8)")
        shot(browser, "phone" + path.replace("/", "-"))
        assert overflow_px(browser) <= 0, f"{path} is wider than 390 px: {wide}"
