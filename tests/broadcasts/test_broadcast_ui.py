"""Broadcast pages of the web UI (SQLite and PostgreSQL): calendar, drafting (relays too) with the
quiet-hours refusal shown, approval by a leader, media upload/TTS refusals, previews."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from media.audio_tools import make_tone

from broadcasts.support import media_row, speakers
from support import ui_login
from thanthien.hub.app import create_app
from thanthien.hub.db.models import Broadcast, MediaItem
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import relays, users
from thanthien.hub.web.auth import csrf_for

PASSWORD = "mat-khau-123"


pytestmark = pytest.mark.usefixtures("cheap_hashing")  # the many logins here stay fast


@pytest.fixture
def sha(ctx):
    with ctx.db.session() as s:
        for role in ("admin", "officer", "leader", "it"):
            users.create_user(s, actor=SYSTEM, username=role, password=PASSWORD, role=role, now=ctx.clock())
        speakers(s, {"ban-a": ["loa-1", "loa-2"]})
        return media_row(s, ctx.clock(), name="Bản tin sáng", duration_s=60.0)


@pytest.fixture
def ui(ctx, sha):
    app = create_app(ctx.settings, ctx.db, ctx=ctx)

    def client(role: str) -> tuple[TestClient, str]:
        c = ui_login(TestClient(app, follow_redirects=False), role, PASSWORD)
        return c, csrf_for(ctx, c.cookies["thanthien_session"])

    return client


def draft(client: TestClient, csrf: str, sha: str, **over: str) -> object:
    form = {
        "csrf": csrf,
        "title": "Thông báo họp",
        "media_sha256": sha,
        "target_kind": "zones",
        "target_zones": "ban-a",
        "priority": "normal",
        "volume": "90",
        "schedule_kind": "daily",
        "local_time": "06:30",
        **over,
    }
    return client.post("/ui/broadcasts", data=form)


def test_an_officer_drafts_and_a_leader_approves_then_the_calendar_shows_it(ui, sha):
    officer, csrf = ui("officer")
    r = draft(officer, csrf, sha)
    assert r.status_code == 303, r.text
    page = r.headers["location"]
    assert "bản nháp" in officer.get(page).text
    assert officer.post(f"{page}/approve", data={"csrf": csrf}).status_code == 403
    leader, lcsrf = ui("leader")
    assert leader.post(f"{page}/approve", data={"csrf": lcsrf}).status_code == 303
    detail = leader.get(page).text
    assert "đã phê duyệt" in detail and "Hằng ngày lúc 06:30" in detail
    assert "officer: tạo bản nháp" in detail and "leader: phê duyệt" in detail
    calendar = officer.get("/ui/broadcasts").text
    assert calendar.count("<b>06:30</b>") == 7  # every day of the week shown, from today


def test_a_slot_in_quiet_hours_is_refused_on_the_page_with_the_reason_and_the_form_kept(ui, sha):
    officer, csrf = ui("officer")
    r = draft(officer, csrf, sha, local_time="22:00", title="Muộn quá")
    assert r.status_code == 422
    assert "giờ yên tĩnh (21:30–05:30)" in r.text and 'value="Muộn quá"' in r.text


def test_an_emergency_play_now_needs_confirmation_and_officers_may_not_send_it(ui, sha):
    officer, csrf = ui("officer")
    assert officer.post("/ui/play-now", data={"csrf": csrf, "media_sha256": sha}).status_code == 403
    leader, lcsrf = ui("leader")
    r = leader.post("/ui/play-now", data={"csrf": lcsrf, "media_sha256": sha, "priority": "emergency"})
    assert r.status_code == 303 and "x%C3%A1c%20nh%E1%BA%ADn" in r.headers["set-cookie"]  # "xác nhận"


def test_a_tts_text_that_is_empty_is_refused_on_the_media_page(ui):
    officer, csrf = ui("officer")
    r = officer.post(
        "/ui/media/tts", data={"csrf": csrf, "text": "   ", "voice": "central", "speed_wpm": "150"}
    )
    assert r.status_code == 422 and "Nội dung thông báo trống" in r.text


def test_an_upload_is_listed_with_a_preview_only_for_logged_in_users(ui, ctx, tmp_path):
    officer, csrf = ui("officer")
    tone = make_tone(tmp_path / "loa.ogg", 1.0)
    r = officer.post(
        "/ui/media",
        data={"csrf": csrf, "title": "Chuông báo"},
        files={"file": ("loa.ogg", tone.read_bytes(), "audio/ogg")},
    )
    assert r.status_code == 303, r.text
    page = officer.get("/ui/media").text
    assert "Chuông báo" in page
    stored = next((ctx.settings.hub.data_dir / "media").glob("??/*.wav"))
    preview = officer.get(f"/ui/media/{stored.stem}.wav")
    assert preview.status_code == 200 and hashlib.sha256(preview.content).hexdigest() == stored.stem
    anonymous = TestClient(officer.app, follow_redirects=False)
    assert anonymous.get(f"/ui/media/{stored.stem}.wav").status_code == 303  # to the login page
    it, _ = ui("it")
    assert it.get(f"/ui/media/{stored.stem}.wav").status_code == 403  # the library is for editors


def test_it_staff_read_the_calendar_without_the_drafting_form(ui):
    it, _ = ui("it")
    page = it.get("/ui/broadcasts")
    assert page.status_code == 200
    assert "Lịch phát 7 ngày" in page.text and 'id="create-broadcast"' not in page.text


def test_a_not_audio_upload_is_refused_on_the_page_and_nothing_is_stored(ui, ctx):
    officer, csrf = ui("officer")
    r = officer.post(
        "/ui/media", data={"csrf": csrf}, files={"file": ("x.mp3", b"hello" * 100, "audio/mpeg")}
    )
    assert r.status_code == 422 and "notice error" in r.text
    assert not list((ctx.settings.hub.data_dir / "media").glob("??/*.wav"))


def test_the_calendar_shows_any_week_from_the_schedules_with_drafts_marked(ui, ctx, sha):
    officer, csrf = ui("officer")
    assert (
        draft(officer, csrf, sha, schedule_kind="weekdays", weekdays="1", local_time="07:15").status_code
        == 303
    )
    page = officer.get("/ui/broadcasts?week=5").text  # far beyond the plan horizon
    monday = (ctx.clock() + timedelta(weeks=5)).astimezone(
        ZoneInfo("Asia/Ho_Chi_Minh")
    )  # the clock is a Monday
    day = page[page.index(f"Thứ Hai {monday:%d/%m}") :]
    day = day[: day.index("</div>")]
    assert "<b>07:15</b>" in day and "bản nháp" in day
    assert page.count("<b>07:15</b>") == 1


def test_editing_an_approved_broadcast_on_its_page_returns_it_to_draft(ui, sha):
    officer, csrf = ui("officer")
    page = draft(officer, csrf, sha).headers["location"]
    leader, lcsrf = ui("leader")
    leader.post(f"{page}/approve", data={"csrf": lcsrf})
    assert 'value="06:30"' in officer.get(page).text  # the edit form shows the current values
    bad = officer.post(
        page,
        data={
            "csrf": csrf,
            "title": "Thông báo họp",
            "media_sha256": sha,
            "target_kind": "all",
            "schedule_kind": "daily",
            "local_time": "23:00",
            "volume": "90",
        },
    )
    assert bad.status_code == 422 and "giờ yên tĩnh" in bad.text and "đã phê duyệt" in bad.text
    ok = officer.post(
        page,
        data={
            "csrf": csrf,
            "title": "Thông báo họp",
            "media_sha256": sha,
            "target_kind": "all",
            "schedule_kind": "daily",
            "local_time": "07:45",
            "volume": "90",
        },
    )
    assert ok.status_code == 303
    detail = officer.get(page).text
    assert "bản nháp" in detail and "Hằng ngày lúc 07:45" in detail and "officer: sửa (về bản nháp)" in detail


# -- quiet-hours exceptions and four eyes (issue 14) -----------------------------------------
REASON = "Lời chúc của Chủ tịch đúng thời khắc giao thừa"


def late_draft(ui, sha) -> str:
    """An officer's draft every day at 23:00, asking for a quiet-hours exception: its page."""
    officer, csrf = ui("officer")
    r = draft(officer, csrf, sha, local_time="23:00", quiet_exception_requested="1")
    assert r.status_code == 303, r.text
    return r.headers["location"]


def granted(ui, sha) -> str:
    page = late_draft(ui, sha)
    leader, lcsrf = ui("leader")
    assert leader.post(f"{page}/quiet-exception", data={"csrf": lcsrf, "reason": REASON}).status_code == 303
    return page


def test_a_draft_in_quiet_hours_is_stored_when_its_author_asks_for_an_exception(ui, sha):
    officer, _ = ui("officer")
    page = officer.get(late_draft(ui, sha)).text
    conflict = page[page.index('id="quiet-conflict"'):]
    assert "23:00" in conflict[:conflict.index("</div>")]
    assert 'id="grant-quiet-exception"' not in page  # officers do not grant it


def test_a_leader_sees_the_form_to_grant_a_quiet_exception_on_the_broadcast_page(ui, sha):
    leader, _ = ui("leader")
    assert 'id="grant-quiet-exception"' in leader.get(late_draft(ui, sha)).text


def test_a_granted_exception_shows_who_granted_it_and_why_on_the_broadcast_page(ui, sha):
    officer, _ = ui("officer")
    page = officer.get(granted(ui, sha)).text
    assert 'id="quiet-exception"' in page and "leader cho phép" in page
    assert f'<span id="quiet-exception-reason">{REASON}</span>' in page
    assert f"leader: cho phép ngoại lệ giờ yên tĩnh — lý do: {REASON}" in page


def test_the_calendar_marks_every_occurrence_of_a_broadcast_with_a_quiet_exception(ui, sha):
    granted(ui, sha)
    officer, _ = ui("officer")
    page = officer.get("/ui/broadcasts").text
    calendar = page[page.index('id="calendar"'):]
    calendar = calendar[:calendar.index("</section>")]
    assert calendar.count(f'class="badge quiet-exception" title="Lý do: {REASON}"') == 7


def test_the_author_is_told_why_they_cannot_approve_instead_of_an_approve_button(ui, sha):
    leader, lcsrf = ui("leader")
    page = draft(leader, lcsrf, sha).headers["location"]
    own = leader.get(page).text
    assert 'id="approval-refused"' in own and 'id="approve"' not in own
    admin, _ = ui("admin")
    assert 'id="approve"' in admin.get(page).text


def test_the_audit_on_the_page_names_author_and_approver(ui, sha):
    officer, csrf = ui("officer")
    page = draft(officer, csrf, sha).headers["location"]
    leader, lcsrf = ui("leader")
    leader.post(f"{page}/approve", data={"csrf": lcsrf})
    assert "leader: phê duyệt (người soạn: officer; người phê duyệt: leader)" in officer.get(page).text

def test_a_relay_falling_back_to_silence_is_drafted_without_a_file_and_its_page_names_the_stream(ui, ctx):
    officer, csrf = ui("officer")
    r = draft(officer, csrf, "", title="Tiếp sóng Đài tỉnh", local_time="17:00",
              stream_url="http://dai-tinh.vn:8000/vov1", slot_min="30", stream_fallback="silence")
    assert r.status_code == 303, r.text
    page = officer.get(r.headers["location"]).text
    assert "http://dai-tinh.vn:8000/vov1" in page and "30 phút" in page and "im lặng" in page
    with ctx.db.session() as s:
        [b] = s.query(Broadcast).all()
        assert (b.stream_url, b.slot_s, b.stream_fallback) == (
            "http://dai-tinh.vn:8000/vov1", 1800.0, "silence")
        assert s.get(MediaItem, b.media_sha256).title == relays.SILENCE_TITLE
    assert ctx.settings.hub.data_dir.joinpath("media", b.media_sha256[:2], f"{b.media_sha256}.wav").is_file()


def test_a_relay_without_its_slot_is_refused_on_the_page_with_the_form_kept(ui, ctx):
    officer, csrf = ui("officer")
    r = draft(officer, csrf, "", title="Tiếp sóng", stream_url="http://dai-tinh.vn:8000/vov1",
              stream_fallback="silence")
    assert r.status_code == 422 and "Thời lượng tiếp sóng" in r.text
    assert 'value="http://dai-tinh.vn:8000/vov1"' in r.text
    with ctx.db.session() as s:
        assert s.query(Broadcast).count() == 0
