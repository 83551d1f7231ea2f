"""The dossier, SMS and contacts pages and their API: who may open them, the same answer
through the API and the web, the number masked for all but the handling officer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hub.api_and_web import Hub, open_hub

from notify.notify_helpers import CITIZEN, messages, officer_with_user
from thanthien.hub.context import HubContext
from thanthien.hub.roles import ROLES

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def hub(ctx: HubContext) -> Iterator[Hub]:
    with open_hub(ctx) as opened:
        yield opened


DOSSIER = {
    "code": "H15-2001",
    "procedure": "Chứng thực bản sao",
    "citizen_name": "Lò Văn Minh",
    "phone": CITIZEN,
}


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/ui/dossiers", {"admin", "officer"}),
        ("/ui/dossier-ratings", {"admin", "leader"}),
        ("/ui/sms", {"admin"}),
        ("/ui/contacts", {"admin"}),
    ],
)
def test_each_page_opens_for_its_roles_and_refuses_the_others(hub: Hub, path, allowed):
    seen = {}
    for role in ROLES:
        hub.login(role)
        seen[role] = hub.web.get(path).status_code
    assert seen == {r: 200 if r in allowed else 403 for r in ROLES}


def test_the_province_software_records_a_dossier_and_its_notice_is_queued(hub: Hub):
    answer = hub.api.post("/api/v1/dossiers", json=DOSSIER, headers=hub.headers("officer"))
    assert answer.status_code == 201, answer.text
    assert (answer.json()["phone"], answer.json()["phone_masked"]) == ("091****678", True)
    (msg,) = messages(hub.ctx)
    assert (msg.kind, msg.phone, msg.status) == ("received", "+84912345678", "queued")


def test_an_event_sent_again_with_the_same_event_id_records_nothing_new(hub: Hub):
    hub.api.post("/api/v1/dossiers", json=DOSSIER, headers=hub.headers("officer"))
    body = {"kind": "supplement", "note": "ban sao CCCD", "event_id": "mc-991"}
    first = hub.api.post("/api/v1/dossiers/H15-2001/events", json=body, headers=hub.headers("officer"))
    again = hub.api.post("/api/v1/dossiers/H15-2001/events", json=body, headers=hub.headers("officer"))
    assert (first.status_code, again.status_code, again.json()["created"]) == (201, 200, False)
    assert [m.kind for m in messages(hub.ctx)] == ["received", "supplement"]


def test_an_invalid_number_is_refused_alike_through_the_api_and_the_web(hub: Hub):
    bad = {**DOSSIER, "phone": "0215 3812 345"}
    api = hub.api.post("/api/v1/dossiers", json=bad, headers=hub.headers("officer"))
    hub.login("officer")
    web = hub.web.post("/ui/dossiers", data=hub.form(**bad))
    assert (api.status_code, web.status_code) == (422, 422)
    assert api.json()["detail"] in web.text
    assert messages(hub.ctx) == []


def test_a_leader_may_not_record_a_dossier_through_the_api_or_the_web(hub: Hub):
    api = hub.api.post("/api/v1/dossiers", json=DOSSIER, headers=hub.headers("leader"))
    hub.login("leader")
    web = hub.web.post("/ui/dossiers", data=hub.form(**DOSSIER))
    assert (api.status_code, web.status_code) == (403, 403)


def test_an_officer_may_not_edit_a_template_through_the_api_or_the_web(hub: Hub):
    body = {"body": "Ho so {ma_ho_so} xong", "unicode": False, "urgent": False, "ask_rating": False}
    api = hub.api.put("/api/v1/sms/templates/result_ready", json=body, headers=hub.headers("officer"))
    hub.login("officer")
    web = hub.web.post("/ui/sms/templates/result_ready", data=hub.form(body=body["body"]))
    assert (api.status_code, web.status_code) == (403, 403)


def test_the_template_editor_shows_the_characters_and_parts_of_a_message(hub: Hub):
    preview = hub.api.post(
        "/api/v1/sms/templates/preview",
        json={"body": "Hồ sơ {ma_ho_so} đã có kết quả", "unicode": True},
        headers=hub.headers("admin"),
    )
    assert preview.json()["encoding"] == "ucs2" and preview.json()["segments"] == 1
    hub.login("admin")
    page = hub.web.get("/ui/sms")
    assert "ký tự · không dấu (GSM-7) · 1 tin" in page.text


def test_the_handling_officer_sees_the_number_in_full_and_others_see_it_masked(hub: Hub):
    officer_id = officer_with_user(hub.ctx, hub.ids["officer"])
    hub.api.post("/api/v1/dossiers", json={**DOSSIER, "officer_id": officer_id}, headers=hub.headers("admin"))
    hub.login("officer")
    mine = hub.web.get("/ui/dossiers/H15-2001").text
    hub.login("admin")
    theirs = hub.web.get("/ui/dossiers/H15-2001").text
    export = hub.web.get("/ui/dossiers-export.csv").content.decode("utf-8-sig")
    assert CITIZEN in mine and CITIZEN not in theirs and "091****678" in theirs
    assert CITIZEN not in export and "091****678" in export


def test_an_admin_stops_messages_to_a_number_and_the_waiting_one_is_blocked(hub: Hub):
    hub.api.post("/api/v1/dossiers", json=DOSSIER, headers=hub.headers("officer"))
    hub.login("admin")
    answer = hub.web.post("/ui/sms/opt-outs", data=hub.form(phone="+84 912 345 678", reason="xin dừng"))
    assert answer.status_code == 303
    assert [m.status for m in messages(hub.ctx)] == ["blocked"]
