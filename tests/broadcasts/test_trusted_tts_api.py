"""TTS people can trust, through the API (SQLite and PostgreSQL): the admin's pronunciation
dictionary shapes what the real espeak-ng reads, and an approver must have played the rendered
audio to its end once before approving; zone rules through the API refuse with the reason."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from broadcasts.support import speakers
from support import role_headers
from thanthien.hub.app import create_app
from thanthien.hub.roles import EVERYONE, SYSTEM
from thanthien.hub.services import users

PASSWORD = "mat-khau-123"
pytestmark = [pytest.mark.usefixtures("cheap_hashing"), pytest.mark.timeout(120)]


@pytest.fixture
def client(ctx):
    with ctx.db.session() as s:
        for role in EVERYONE:
            users.create_user(s, actor=SYSTEM, username=role, password=PASSWORD, role=role, now=ctx.clock())
        speakers(s, {"ban-a": ["loa-1"]})
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx)) as c:
        yield c


@pytest.fixture
def as_role(client):
    return role_headers(client, PASSWORD)


def render(client, as_role, text: str) -> dict:
    r = client.post("/api/v1/media/tts", headers=as_role("officer"), json={"text": text, "chime": False})
    assert r.status_code == 201, r.text
    return r.json()


def drafted(client, as_role, sha: str) -> int:
    r = client.post("/api/v1/broadcasts", headers=as_role("officer"),
                    json={"title": "Thông báo", "media_sha256": sha, "schedule_kind": "daily",
                          "local_time": "17:10"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_the_admins_dictionary_entry_is_what_the_engine_reads(client, as_role):
    r = client.put("/api/v1/tts/lexicon/KDC", headers=as_role("admin"), json={"spoken": "khu dân cư"})
    assert r.status_code == 200, r.text
    item = render(client, as_role, "Họp KDC lúc 19h30 ngày 2/9, gọi 0912 345 678.")
    assert item["tts_spoken"] == ("Họp khu dân cư lúc mười chín giờ ba mươi phút ngày hai tháng chín, gọi "
                                  "không chín một hai, ba bốn năm, sáu bảy tám.")
    assert item["tts_engine"] == "espeak-ng" and item["tts_text"].startswith("Họp KDC")


def test_only_an_admin_edits_the_dictionary(client, as_role):
    r = client.put("/api/v1/tts/lexicon/KDC", headers=as_role("officer"), json={"spoken": "khu dân cư"})
    assert r.status_code == 403
    terms = {e["term"]: e for e in client.get("/api/v1/tts/lexicon", headers=as_role("officer")).json()}
    assert "KDC" not in terms and terms["UBND"]["built_in"] is True


def test_a_bad_dictionary_entry_is_refused_and_nothing_is_stored(client, as_role):
    r = client.put("/api/v1/tts/lexicon/KDC", headers=as_role("admin"), json={"spoken": "   "})
    assert r.status_code == 422 and "Cách đọc phải có chữ" in r.text
    terms = [e["term"] for e in client.get("/api/v1/tts/lexicon", headers=as_role("admin")).json()]
    assert "KDC" not in terms


def test_a_tts_broadcast_is_not_approved_before_the_approver_heard_it(client, as_role):
    bid = drafted(client, as_role, render(client, as_role, "Kính mời bà con họp tổ lúc 17 giờ.")["sha256"])
    r = client.post(f"/api/v1/broadcasts/{bid}/approve", headers=as_role("leader"))
    assert r.status_code == 422 and "phải nghe hết bản đọc" in r.text


def test_a_listen_reported_sooner_than_the_audio_lasts_does_not_count(client, as_role):
    sha = render(client, as_role, "Kính mời bà con họp tổ lúc 17 giờ.")["sha256"]
    assert client.get(f"/api/v1/media/{sha}/preview", headers=as_role("leader")).status_code == 200
    r = client.post(f"/api/v1/media/{sha}/listened", headers=as_role("leader"))
    assert r.status_code == 422 and "Chưa nghe hết" in r.text


def test_a_listen_without_opening_the_audio_is_refused(client, as_role):
    sha = render(client, as_role, "Kính mời bà con họp tổ lúc 17 giờ.")["sha256"]
    r = client.post(f"/api/v1/media/{sha}/listened", headers=as_role("leader"))
    assert r.status_code == 422 and "Chưa mở bản ghi" in r.text


def test_after_playing_it_through_the_approver_approves(client, as_role, ctx):
    item = render(client, as_role, "Kính mời bà con họp tổ lúc 17 giờ.")
    bid = drafted(client, as_role, item["sha256"])
    assert client.get(f"/api/v1/media/{item['sha256']}/preview", headers=as_role("leader")).status_code == 200
    ctx.clock.advance(item["duration_s"] + 0.5)
    r = client.post(f"/api/v1/media/{item['sha256']}/listened", headers=as_role("leader"))
    assert r.status_code == 200 and r.json()["username"] == "leader"
    r = client.post(f"/api/v1/broadcasts/{bid}/approve", headers=as_role("leader"))
    assert r.status_code == 200 and r.json()["status"] == "approved"
    # another approver's listen is theirs alone
    r = client.post(f"/api/v1/media/{item['sha256']}/listened", headers=as_role("admin"))
    assert r.status_code == 422


def test_a_zone_rule_through_the_api_refuses_a_schedule_with_the_reason(client, as_role):
    rule = {"slots": [{"start": "05:30", "minutes": 60}, {"start": "17:00", "minutes": 60}],
            "daily_minutes": 90}
    r = client.put("/api/v1/zones/ban-a/broadcast-rules", headers=as_role("admin"), json=rule)
    assert r.status_code == 200 and r.json()["back_to_draft"] == []
    stored = client.get("/api/v1/zones/ban-a/broadcast-rules", headers=as_role("it")).json()
    assert stored["rule"]["slots"] == rule["slots"]
    sha = render(client, as_role, "Thông báo thử.")["sha256"]
    r = client.post("/api/v1/broadcasts", headers=as_role("officer"),
                    json={"title": "Sáng", "media_sha256": sha, "schedule_kind": "daily",
                          "local_time": "08:00"})
    assert r.status_code == 422 and "Khung giờ được phép: 05:30–06:30, 17:00–18:00" in r.text


def test_a_rule_with_extra_fields_or_a_bad_time_is_refused(client, as_role):
    for body in ({"slots": [{"start": "25:00", "minutes": 60}]}, {"curfew": True}):
        r = client.put("/api/v1/broadcast-rules", headers=as_role("admin"), json=body)
        assert r.status_code == 422
    assert client.get("/api/v1/broadcast-rules", headers=as_role("admin")).json()["rule"]["slots"] is None


def test_the_zone_minutes_per_day_are_served(client, as_role, ctx):
    item = render(client, as_role, "Thông báo thử.")
    bid = drafted(client, as_role, item["sha256"])
    client.get(f"/api/v1/media/{item['sha256']}/preview", headers=as_role("leader"))
    ctx.clock.advance(item["duration_s"] + 1)
    client.post(f"/api/v1/media/{item['sha256']}/listened", headers=as_role("leader"))
    assert client.post(f"/api/v1/broadcasts/{bid}/approve", headers=as_role("leader")).status_code == 200
    day = (ctx.clock() + timedelta(days=1)).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    [zone] = client.get(f"/api/v1/broadcasts/zone-minutes?start={day}&days=1", headers=as_role("it")).json()
    assert zone["zone"] == "ban-a"
    assert zone["minutes"][day] == pytest.approx(item["duration_s"] / 60, abs=0.01)
