"""Putting a loudspeaker into service from the browser (issue 15, done when): in Chromium, IT
add a speaker node for a new hamlet and get its code; a simulated Pi enrolls with it (the real
`thanthien edge enroll` and edge agent, mock hardware, over HTTP and a real Mosquitto), shows
online, and plays the next broadcast of its zone; IT set its volume on the page and the node
reports the new volume; IT retire it and the broker refuses its next connection. The code it
used is refused the second time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from broadcasts.town import daytime_zone, free_port, label_of
from media.audio_tools import make_tone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from support import HUB, bearer, wait_until
from thanthien.cli import main
from thanthien.config import load_config, validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.devices.speaker import SpeakerDevice
from thanthien.edge.settings import EdgeSettings
from thanthien.hub.roles import SYSTEM
from thanthien.hub.runtime import HubRuntime
from thanthien.hub.services import registry, users
from thanthien.hub.settings import HubSettings
from web.pages import css, log_in, text, visible, wait

pytestmark = pytest.mark.timeout(240)
PASSWORDS = {role: f"mat-khau-{role}-2026" for role in ("admin", "it", "officer", "leader")}
NODE = "loa-ban-na-sang"
ZONE = "ban-na-sang"


@pytest.fixture
def town(tmp_path: Path, broker_factory) -> Iterator[HubRuntime]:
    """A hub with every process role (API, ingest, scheduler) over a real Mosquitto, writing
    that broker's password file; a new hamlet without any speaker yet."""
    broker = broker_factory(HUB)
    port = free_port()
    settings = validate_data(HubSettings, {
        # a zone where it is about noon: the broadcast a few seconds ahead is never in quiet hours
        "hub": {"data_dir": str(tmp_path / "hub"), "timezone": daytime_zone()},
        "http": {"host": "127.0.0.1", "port": port, "secret_key": "enroll-browser-secret-0123456789"},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": HUB.username, "password": HUB.password,
                 "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        "ingest": {"client_id": "hub-enroll-browser", "flush_ms": 5},
        "broadcasts": {"plan_check_s": 1, "report_grace_s": 2},
        "enrollment": {"broker_data": str(broker.data_dir), "broker_host": "127.0.0.1",
                       "broker_port": broker.port},
        "fleet": {"command_timeout_s": 10},
    })
    hub = HubRuntime(settings)
    hub.start()
    assert hub.wait_http(15)
    with hub.db.session() as s:
        for role, password in PASSWORDS.items():
            users.create_user(s, actor=SYSTEM, username=role, password=password, role=role,
                              now=hub.ctx.clock())
        registry.create_zone(s, actor=SYSTEM, code=ZONE, name="Bản Nà Sáng")
    hub.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield hub
    hub.stop()


def _pi_agent(config: Path) -> EdgeAgent:
    agent = EdgeAgent(load_config(EdgeSettings, config), config_path=config)
    agent.start()
    return agent


def test_it_puts_a_speaker_into_service_and_out_of_it_from_the_browser(browser, town, tmp_path, shot):
    base: str = town.url  # type: ignore[attr-defined]
    # IT add the speaker of the new hamlet and get its one-time code
    log_in(browser, base, "it", PASSWORDS["it"])
    browser.get(base + "/ui/enroll")
    form = css(browser, "form#add-node")
    form.find_element(By.NAME, "node_id").send_keys(NODE)
    form.find_element(By.NAME, "name").send_keys("Cụm loa Bản Nà Sáng")
    Select(form.find_element(By.NAME, "zone")).select_by_visible_text("Bản Nà Sáng")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    code = visible(browser, "#enrollment-code").text
    assert len(code) == 19 and code in text(browser, "#enroll-command")
    assert css(browser, ".qr svg")
    shot(browser, "code")

    # a simulated Pi enrolls with it and comes online
    pi = tmp_path / "pi"
    assert main(["edge", "enroll", "--hub", base, "--code", code, "--data", str(pi / "data"),
                 "--config", str(pi / "edge.toml"), "--hardware", "mock"]) == 0
    agent = _pi_agent(pi / "edge.toml")
    try:
        browser.get(f"{base}/ui/nodes/{NODE}")
        wait(browser, 20).until(lambda d: d.refresh() or "Trực tuyến" in (text(d, "h1 .badge") or ""))
        assert css(browser, "#enrollment").get_attribute("data-identity") == "password"
        shot(browser, "online")

        # it plays the next broadcast of its zone
        api = _api(base)
        tone = make_tone(tmp_path / "thong-bao.wav", 1.0, freq=650)
        media = api.post("/media", headers=api.officer, data={"title": "Thông báo"},
                         files={"file": (tone.name, tone.read_bytes(), "audio/wav")}).json()
        start = (datetime.now(UTC) + timedelta(seconds=12)).replace(microsecond=0)
        created = api.post("/broadcasts", headers=api.officer, json={
            "title": "Thông báo họp bản", "media_sha256": media["sha256"], "schedule_kind": "once",
            "start_at": start.isoformat(), "target_kind": "zones", "target_zones": [ZONE]})
        assert created.status_code == 201, created.text
        assert api.post(f"/broadcasts/{created.json()['id']}/approve", headers=api.leader).status_code == 200
        speaker = agent.device(SpeakerDevice)
        sink = pi / "data" / "audio"

        def played() -> bool:
            log = sink / "playlog.jsonl"
            return log.exists() and label_of(media["sha256"]) in log.read_text(encoding="utf-8")

        assert wait_until(played, timeout=40)

        # IT set its volume on the page; the node reports the new volume
        browser.get(f"{base}/ui/nodes/{NODE}")
        volume = css(browser, "form#set-volume")
        volume.find_element(By.NAME, "volume").send_keys("35")
        volume.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        notice = visible(browser, ".notice").text
        assert "Đặt âm lượng: thành công" in notice and "volume: 35" in notice
        assert speaker.player is not None and speaker.player.settings.volume == 35
        answer = css(browser, "table.commands tbody tr")
        assert answer.get_attribute("data-status") == "ok" and "volume: 35" in answer.text
        in_force = "#config[data-reported='2']"  # the new volume is in config version 2, which the node runs
        wait(browser, 20).until(lambda d: d.refresh() or d.find_elements(By.CSS_SELECTOR, in_force))
        shot(browser, "volume")

        # IT retire it; its next connection is refused
        browser.execute_script("window.confirm = function () { return true; }")
        css(browser, "button[data-action=retire]").click()
        assert "Đã ngừng sử dụng" in visible(browser, ".notice").text
        link = agent.link
        assert link is not None
        assert wait_until(lambda: not link.connected.is_set(), timeout=10)
        assert wait_until(lambda: link.last_connect_error is not None, timeout=10)
        assert "Not authorized" in str(link.last_connect_error)
        shot(browser, "retired")
    finally:
        agent.stop()
    # the code it used is refused the second time, and nothing is written
    again = tmp_path / "again"
    assert main(["edge", "enroll", "--hub", base, "--code", code, "--data", str(again / "data"),
                 "--config", str(again / "edge.toml"), "--hardware", "mock"]) == 3
    assert not again.exists()


class _Api:
    """The hub's API as the officer and the leader use it (upload, schedule, approve)."""

    def __init__(self, base: str) -> None:
        import httpx

        self.client = httpx.Client(base_url=base, timeout=30)
        self.officer = bearer(self.client, "officer", PASSWORDS["officer"])
        self.leader = bearer(self.client, "leader", PASSWORDS["leader"])

    def post(self, path: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.client.post(f"/api/v1{path}", **kw)


def _api(base: str) -> _Api:
    return _Api(base)

