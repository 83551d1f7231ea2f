"""The media and broadcast API (SQLite and PostgreSQL): uploads and TTS refused with clear
messages and nothing stored, node tokens for downloads, roles, drafts and approval."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from media.audio_tools import make_tone
from sqlalchemy import func, select

from broadcasts.support import speakers
from support import role_headers
from thanthien.hub.app import create_app
from thanthien.hub.db.models import MediaItem
from thanthien.hub.roles import EVERYONE, SYSTEM
from thanthien.hub.services import users

PASSWORD = "mat-khau-123"


pytestmark = pytest.mark.usefixtures("cheap_hashing")  # the many logins here stay fast


@pytest.fixture
def client(ctx):
    with ctx.db.session() as s:
        for role in EVERYONE:
            users.create_user(s, actor=SYSTEM, username=role, password=PASSWORD, role=role, now=ctx.clock())
        speakers(s, {"ban-a": ["loa-1"], "ban-b": ["loa-2"]})
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx)) as c:
        yield c


@pytest.fixture
def as_role(client):
    return role_headers(client, PASSWORD)


def stored(ctx) -> tuple[int, list]:
    media_dir = ctx.settings.hub.data_dir / "media"
    with ctx.db.session() as s:
        rows = s.scalar(select(func.count()).select_from(MediaItem))
    return rows, sorted(p.name for p in media_dir.glob("??/*")) if media_dir.exists() else []


@pytest.fixture
def uploaded(client, as_role, tmp_path) -> dict:
    tone = make_tone(tmp_path / "chuong.mp3", 1.0)
    r = client.post(
        "/api/v1/media",
        headers=as_role("officer"),
        data={"title": "Chuông"},
        files={"file": ("chuong.mp3", tone.read_bytes(), "audio/mpeg")},
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_an_upload_that_is_not_audio_is_refused_with_a_clear_message_and_nothing_is_stored(
    client, as_role, ctx
):
    r = client.post(
        "/api/v1/media",
        headers=as_role("officer"),
        files={"file": ("thong-bao.mp3", b"<html>not audio</html>" * 50, "audio/mpeg")},
    )
    assert r.status_code == 422
    assert "âm thanh" in r.json()["detail"]
    assert stored(ctx) == (0, [])


def test_an_uploaded_file_is_stored_normalised_and_can_be_previewed(client, as_role, ctx, uploaded):
    assert uploaded["source_format"] == "MP3" and uploaded["title"] == "Chuông"
    assert 0.9 < uploaded["duration_s"] < 1.2
    preview = client.get(f"/api/v1/media/{uploaded['sha256']}/preview", headers=as_role("leader"))
    assert preview.status_code == 200 and preview.headers["content-type"] == "audio/wav"
    assert hashlib.sha256(preview.content).hexdigest() == uploaded["sha256"]
    assert stored(ctx) == (1, [f"{uploaded['sha256']}.wav"])


@pytest.mark.parametrize(("text", "message"), [(" \n ", "trống"), ("a" * 3001, "quá dài")])
def test_an_empty_or_too_long_tts_text_is_refused_and_nothing_is_stored(client, as_role, ctx, text, message):
    r = client.post("/api/v1/media/tts", headers=as_role("officer"), json={"text": text})
    assert r.status_code == 422 and message in r.json()["detail"]
    assert stored(ctx) == (0, [])


def test_a_tts_announcement_is_rendered_and_kept_with_its_text(client, as_role):
    r = client.post(
        "/api/v1/media/tts",
        headers=as_role("officer"),
        json={"text": "Kính mời bà con đến họp thôn.", "voice": "southern", "chime": False},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["tts_text"], r.json()["tts_voice"], r.json()["source_format"]) == (
        "Kính mời bà con đến họp thôn.",
        "southern",
        "TTS",
    )


def test_only_admin_and_it_issue_node_tokens(client, as_role):
    assert client.post("/api/v1/nodes/loa-1/media-token", headers=as_role("officer")).status_code == 403
    assert client.post("/api/v1/nodes/loa-1/media-token", headers=as_role("it")).status_code == 200


def test_a_node_downloads_only_with_its_own_token_and_only_media_of_its_plan(client, as_role, ctx, uploaded):
    sha = uploaded["sha256"]
    token_1 = client.post("/api/v1/nodes/loa-1/media-token", headers=as_role("it")).json()["token"]
    token_2 = client.post("/api/v1/nodes/loa-2/media-token", headers=as_role("it")).json()["token"]
    url = f"/api/v1/media/{sha}"
    body = {
        "title": "Họp thôn",
        "media_sha256": sha,
        "target_kind": "zones",
        "target_zones": ["ban-a"],
        "schedule_kind": "once",
        "start_at": (ctx.clock() + timedelta(hours=1)).isoformat(),
    }
    bid = client.post("/api/v1/broadcasts", headers=as_role("officer"), json=body).json()["id"]
    assert client.get(url, headers={"Authorization": f"Bearer {token_1}"}).status_code == 403  # a draft
    assert client.post(f"/api/v1/broadcasts/{bid}/approve", headers=as_role("leader")).status_code == 200
    ok = client.get(url, headers={"Authorization": f"Bearer {token_1}"})
    assert ok.status_code == 200 and hashlib.sha256(ok.content).hexdigest() == sha
    assert client.get(url, headers={"Authorization": f"Bearer {token_2}"}).status_code == 403  # not its zone
    assert client.get(url, headers={"Authorization": "Bearer tn_wrong"}).status_code == 401
    assert client.get(url).status_code == 401
    assert client.get(url, headers=as_role("admin")).status_code == 401  # a login is not a node token
    rotated = client.post("/api/v1/nodes/loa-1/media-token", headers=as_role("it")).json()["token"]
    assert client.get(url, headers={"Authorization": f"Bearer {token_1}"}).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {rotated}"}).status_code == 200


def test_officers_draft_leaders_approve_and_the_audit_names_them(client, as_role, ctx, uploaded):
    body = {
        "title": "Bản tin sáng",
        "media_sha256": uploaded["sha256"],
        "schedule_kind": "weekdays",
        "weekdays": [1, 3, 5],
        "local_time": "06:30",
    }
    created = client.post("/api/v1/broadcasts", headers=as_role("officer"), json=body)
    assert created.status_code == 201 and created.json()["status"] == "draft"
    assert created.json()["schedule_text"] == "Thứ Hai, Thứ Tư, Thứ Sáu lúc 06:30"
    bid = created.json()["id"]
    assert client.post(f"/api/v1/broadcasts/{bid}/approve", headers=as_role("officer")).status_code == 403
    assert (
        client.post(f"/api/v1/broadcasts/{bid}/approve", headers=as_role("leader")).json()["status"]
        == "approved"
    )
    audit = client.get(f"/api/v1/broadcasts/{bid}/audit", headers=as_role("it")).json()
    assert [(a["action"], a["username"]) for a in audit] == [("created", "officer"), ("approved", "leader")]
    calendar = client.get("/api/v1/occurrences", headers=as_role("officer")).json()
    assert {o["start_at_local"][11:16] for o in calendar} == {"06:30"} and calendar[0]["targets"] == 2


def test_a_slot_in_quiet_hours_is_refused_through_the_api_with_the_reason(client, as_role, uploaded):
    body = {
        "title": "Muộn",
        "media_sha256": uploaded["sha256"],
        "schedule_kind": "daily",
        "local_time": "22:15",
    }
    r = client.post("/api/v1/broadcasts", headers=as_role("officer"), json=body)
    assert r.status_code == 422 and "giờ yên tĩnh (21:30–05:30)" in r.json()["detail"]
    assert client.get("/api/v1/broadcasts", headers=as_role("officer")).json() == []


def test_an_emergency_play_now_needs_confirmation(client, as_role, uploaded):
    body = {"media_sha256": uploaded["sha256"], "priority": "emergency"}
    r = client.post("/api/v1/broadcasts/play-now", headers=as_role("leader"), json=body)
    assert r.status_code == 422 and "xác nhận" in r.json()["detail"]
    assert (
        client.post(
            "/api/v1/broadcasts/play-now", headers=as_role("officer"), json={**body, "confirm": True}
        ).status_code
        == 403
    )


def test_holiday_catalogue_lists_tet_with_its_next_dates(client, as_role):
    rows = {h["key"]: h for h in client.get("/api/v1/broadcasts/holidays", headers=as_role("officer")).json()}
    assert rows["tet_1"]["name"] == "Mùng một Tết Nguyên Đán"
    assert rows["tet_1"]["next_dates"] == ["2027-02-06", "2028-01-26"]


def test_an_unused_file_can_be_deleted_but_one_a_broadcast_used_is_kept(
    client, as_role, ctx, uploaded, tmp_path
):
    sha = uploaded["sha256"]
    body = {"title": "Họp", "media_sha256": sha, "schedule_kind": "daily", "local_time": "07:00"}
    bid = client.post("/api/v1/broadcasts", headers=as_role("officer"), json=body).json()["id"]
    client.delete(f"/api/v1/broadcasts/{bid}", headers=as_role("officer"))  # archived, reports kept
    refused = client.delete(f"/api/v1/media/{sha}", headers=as_role("officer"))
    assert refused.status_code == 409 and f"#{bid}" in refused.json()["detail"]
    other = make_tone(tmp_path / "khac.wav", 1.0, freq=880)
    unused = client.post(
        "/api/v1/media",
        headers=as_role("officer"),
        files={"file": ("khac.wav", other.read_bytes(), "audio/wav")},
    ).json()["sha256"]
    assert stored(ctx)[0] == 2
    assert client.delete(f"/api/v1/media/{unused}", headers=as_role("officer")).status_code == 204
    assert stored(ctx) == (1, [f"{sha}.wav"])


def test_a_file_name_with_path_tricks_writes_nowhere_but_the_library(client, as_role, ctx, tmp_path):
    tone = make_tone(tmp_path / "t.wav", 0.5)
    trick = "../../../../../tmp/thanthien-evil.wav"
    r = client.post("/api/v1/media", headers=as_role("officer"),
                    files={"file": (trick, tone.read_bytes(), "audio/wav")})
    assert r.status_code == 201, r.text
    sha = r.json()["sha256"]
    assert stored(ctx) == (1, [f"{sha}.wav"])  # content-addressed, the name is only a label
    assert not Path("/tmp/thanthien-evil.wav").exists()
    data_root = ctx.settings.hub.data_dir
    assert [p.name for p in data_root.parent.rglob("thanthien-evil*")] == []


# -- quiet-hours exceptions and four eyes (issue 14) -----------------------------------------
def midnight_greeting(client, as_role, sha: str) -> int:
    """The chairman's giao thừa greeting (Mùng một Tết at 00:00), drafted asking for an exception."""
    body = {"title": "Lời chúc giao thừa", "media_sha256": sha, "schedule_kind": "holiday",
            "local_time": "00:00", "holidays": ["tet_1"], "quiet_exception_requested": True}
    r = client.post("/api/v1/broadcasts", headers=as_role("officer"), json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_leader_grants_a_quiet_exception_through_the_api_and_the_greeting_is_approved_as_normal(
    client, as_role, uploaded
):
    bid = midnight_greeting(client, as_role, uploaded["sha256"])
    granted = client.post(f"/api/v1/broadcasts/{bid}/quiet-exception", headers=as_role("leader"),
                          json={"reason": "Lời chúc đúng thời khắc giao thừa"})
    assert granted.status_code == 200, granted.text
    assert {k: granted.json()["quiet_exception"][k] for k in ("granted_by", "reason")} == {
        "granted_by": "leader", "reason": "Lời chúc đúng thời khắc giao thừa"}
    approved = client.post(f"/api/v1/broadcasts/{bid}/approve", headers=as_role("admin")).json()
    assert (approved["status"], approved["priority"]) == ("approved", "normal")


def test_a_quiet_exception_is_withdrawn_through_the_api_once(client, as_role, uploaded):
    bid = midnight_greeting(client, as_role, uploaded["sha256"])
    url = f"/api/v1/broadcasts/{bid}/quiet-exception"
    client.post(url, headers=as_role("leader"), json={"reason": "Giao thừa"})
    withdrawn = client.delete(url, headers=as_role("leader"))
    assert withdrawn.status_code == 200 and withdrawn.json()["quiet_exception"] is None
    assert client.delete(url, headers=as_role("leader")).status_code == 409


def test_the_audit_through_the_api_names_author_and_approver_of_an_approval(client, as_role, uploaded):
    body = {"title": "Bản tin sáng", "media_sha256": uploaded["sha256"], "schedule_kind": "daily",
            "local_time": "06:30"}
    bid = client.post("/api/v1/broadcasts", headers=as_role("officer"), json=body).json()["id"]
    client.post(f"/api/v1/broadcasts/{bid}/approve", headers=as_role("leader"))
    approval = client.get(f"/api/v1/broadcasts/{bid}/audit", headers=as_role("it")).json()[-1]
    assert (approval["details"]["author"], approval["details"]["approver"]) == ("officer", "leader")
