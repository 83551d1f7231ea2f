"""A live announcement from a real browser: Debian's Chromium with a fake microphone
(``--use-fake-device-for-media-stream --use-file-for-fake-audio-capture``, a 600 Hz tone) on the
live page of a real hub (uvicorn, WebSocket) with a real Mosquitto and two speaker agents with
WAV sinks. The officer ticks a hamlet and holds the button; both speakers play the tone live;
the page says when to speak and when it ended, and the delivery report has both speakers."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from broadcasts.town import PASSWORD, Town, node_accounts
from media.audio_tools import make_tone

from support import HUB, wait_until
from thanthien.edge.audio import AudioClip, level_dbfs
from web.conftest import ARTIFACTS, CHROMEDRIVER, CHROMIUM
from web.pages import overflow_px

pytestmark = [pytest.mark.timeout(180)]


@pytest.fixture
def town(broker_factory, tmp_path) -> Iterator[Town]:
    accounts = node_accounts(2)
    broker = broker_factory(HUB, *accounts)
    t = Town(tmp_path, broker.port, HUB, accounts, zones={a.username: "ban-a" for a in accounts},
             realtime=True)
    t.broker = broker
    yield t.start()
    t.stop()


@pytest.fixture
def chromium(tmp_path) -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"Debian's chromium and chromium-driver are not installed ({CHROMIUM}, {CHROMEDRIVER})")
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    mic = make_tone(tmp_path / "mic.wav", 3.0, freq=600, gain_db=-6.0, channels=1, rate=48000)
    profile = tempfile.mkdtemp(prefix="thanthien-chromium-live-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=390,844", "--lang=vi-VN",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={mic}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_an_officer_holds_the_button_and_the_hamlet_hears_the_microphone_live(town, chromium):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = chromium
    base = f"http://127.0.0.1:{town.http_port}"
    d.get(base + "/ui/login")
    d.find_element(By.NAME, "username").send_keys("officer")
    d.find_element(By.NAME, "password").send_keys(PASSWORD)
    d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(d, 15).until(lambda x: "/ui/login" not in x.current_url)
    d.set_window_size(390, 844)
    d.get(base + "/ui/live")
    assert overflow_px(d) <= 0  # fits a phone
    d.find_element(By.CSS_SELECTOR, 'input[name="target_zones"][value="ban-a"]').click()
    button = d.find_element(By.ID, "talk")
    status = d.find_element(By.ID, "live-status")
    ActionChains(d).click_and_hold(button).perform()
    WebDriverWait(d, 15).until(lambda _: "hãy nói" in status.text)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(ARTIFACTS / "live-on-air-390.png"))
    threading.Event().wait(2.5)  # the officer speaks (the fake microphone plays its tone)
    ActionChains(d).release(button).perform()
    WebDriverWait(d, 20).until(lambda _: "Đã kết thúc" in status.text)
    assert "bản ghi âm đã lưu" in status.text

    def played(node: str) -> dict | None:
        return next((e for e in town.playlog(node) if str(e["label"]).startswith("live:")), None)

    assert wait_until(lambda: all(played(n) for n in town.agents), 20)
    for node in town.agents:
        entry = played(node)
        assert entry is not None and entry["duration_s"] >= 1.5, entry
        clip = AudioClip.from_wav(Path(town.tmp / "nodes" / node / "sink" / str(entry["file"])))
        assert level_dbfs(clip.frames) > -45  # the microphone's tone (echo-cancelled), not silence
    occurrence = str(played("loa-01")["label"]).split(":", 1)[1]
    report = town.wait_report(occurrence, lambda r: r["counts"]["finished"] == 2, timeout=20)
    assert {s["source"] for dd in report["deliveries"] for s in dd["sources"]} == {"live"}
    d.get(base + "/ui/live")
    log = d.find_element(By.ID, "live-log").text
    assert "officer" in log and "Bản ban-a" not in log and "ban-a" in log
