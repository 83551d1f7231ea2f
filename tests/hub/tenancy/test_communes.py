"""Communes and their onboarding (issue 20 item 4): a province admin adds a commune and puts it
into service from the browser; a commune's admin sees only their own."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from support import bearer, ui_login
from thanthien.hub.app import create_app
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import communes, users
from thanthien.hub.web.auth import COOKIE, CSRF_FIELD, csrf_for

pytestmark = pytest.mark.usefixtures("cheap_hashing")
PASSWORD = "mat-khau-dung-2026"


@pytest.fixture
def client(ctx):
    with ctx.db.session() as s:
        users.create_user(s, actor=SYSTEM, username="tinh", password=PASSWORD, role="admin", now=ctx.clock())
        communes.create_commune(s, actor=SYSTEM, code="ang-to", name="Xã Ẳng Tở", now=ctx.clock())
        users.create_user(s, actor=SYSTEM, username="qt-angto", password=PASSWORD, role="admin",
                          commune="ang-to", now=ctx.clock())
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx), follow_redirects=False) as c:
        yield c


def _form(ctx, client: TestClient, **fields: str) -> dict[str, str]:
    return {**fields, CSRF_FIELD: csrf_for(ctx, client.cookies[COOKIE])}


def test_a_province_admin_adds_a_commune_and_its_first_zone_and_counter_from_the_browser(ctx, client):
    ui_login(client, "tinh", PASSWORD)
    created = client.post("/ui/communes", data=_form(ctx, client, code="ang-nua", name="Xã Ẳng Nưa"))
    assert created.status_code == 303 and created.headers["location"] == "/ui/communes/ang-nua"
    client.post("/ui/communes/ang-nua/zones", data=_form(ctx, client, zone_code="ban-nua", name="Bản Nưa"))
    client.post("/ui/communes/ang-nua/counters",
                data=_form(ctx, client, counter_code="quay-nua", name="Quầy 1"))
    page = client.get("/ui/communes/ang-nua").text
    assert "Bản Nưa" in page and "Quầy 1" in page
    with ctx.db.session(write=False) as s:
        state = communes.onboarding(s, viewer=SYSTEM, code="ang-nua")
    assert (state.zones, state.counters, state.admins) == (1, 1, 0)


def test_a_commune_admin_cannot_add_a_commune(ctx, client):
    headers = bearer(client, "qt-angto", PASSWORD)
    answer = client.post("/api/v1/communes", headers=headers, json={"code": "xa-moi", "name": "Xã Mới"})
    assert answer.status_code == 403


def test_a_commune_admin_lists_only_their_commune(ctx, client):
    headers = bearer(client, "qt-angto", PASSWORD)
    assert [c["code"] for c in client.get("/api/v1/communes", headers=headers).json()] == ["ang-to"]
    tinh = bearer(client, "tinh", PASSWORD)
    assert {c["code"] for c in client.get("/api/v1/communes", headers=tinh).json()} == {"home", "ang-to"}


def test_a_commune_admin_is_taken_to_their_commune_s_page(ctx, client):
    ui_login(client, "qt-angto", PASSWORD)
    assert client.get("/ui/communes").headers["location"] == "/ui/communes/ang-to"
    assert client.get("/ui/communes/home").status_code == 404


def test_a_commune_admin_s_new_user_belongs_to_their_commune(ctx, client):
    headers = bearer(client, "qt-angto", PASSWORD)
    made = client.post("/api/v1/users", headers=headers,
                       json={"username": "cb-angto", "password": PASSWORD, "role": "officer"}).json()
    with ctx.db.session(write=False) as s:
        assert users.get_user(s, user_id=made["id"]).commune_id == communes.commune_by_code(s, "ang-to").id


def test_a_commune_admin_cannot_make_a_user_of_another_commune(ctx, client):
    headers = bearer(client, "qt-angto", PASSWORD)
    answer = client.post("/api/v1/users", headers=headers,
                         json={"username": "lan", "password": PASSWORD, "role": "officer", "commune": "home"})
    assert answer.status_code == 404


def test_a_province_admin_makes_a_commune_user_from_the_users_page(ctx, client):
    ui_login(client, "tinh", PASSWORD)
    client.post("/ui/users", data=_form(ctx, client, username="it-angto", full_name="Kỹ thuật", role="it",
                                        password=PASSWORD, commune="ang-to"))
    with ctx.db.session(write=False) as s:
        made = next(u for u in users.list_users(s, viewer=SYSTEM) if u.username == "it-angto")
        assert made.commune_id == communes.commune_by_code(s, "ang-to").id


def test_a_commune_cannot_take_a_code_the_public_pages_use(ctx, client):
    headers = bearer(client, "tinh", PASSWORD)
    answer = client.post("/api/v1/communes", headers=headers, json={"code": "loa", "name": "Xã Loa"})
    assert answer.status_code == 422 and "công khai" in answer.text


def test_a_province_admin_picks_the_commune_whose_broadcast_rules_to_open(ctx, client):
    ui_login(client, "tinh", PASSWORD)
    page = client.get("/ui/registry/rules")
    assert page.status_code == 200 and 'href="/ui/registry/rules?commune=ang-to"' in page.text
    assert client.get("/ui/registry/rules?commune=ang-to").status_code == 200


def test_a_commune_admin_opens_their_commune_s_broadcast_rules_at_once(ctx, client):
    ui_login(client, "qt-angto", PASSWORD)
    page = client.get("/ui/registry/rules")
    assert page.status_code == 200 and "?commune=" not in page.text


def test_a_commune_user_s_pages_are_headed_with_their_commune_s_name(ctx, client):
    ui_login(client, "qt-angto", PASSWORD)
    brand = client.get("/ui/").text.split('class="brand"')[1].split("</a>")[0]
    assert "Xã Ẳng Tở" in brand and ctx.settings.hub.site_name not in brand


def test_a_commune_user_s_export_is_titled_with_their_commune(ctx, client):
    import io
    import zipfile

    headers = bearer(client, "qt-angto", PASSWORD)
    answer = client.get("/api/v1/ratings/summary/export", headers=headers, params={"format": "xlsx"})
    with zipfile.ZipFile(io.BytesIO(answer.content)) as book:
        text = b"".join(book.read(name) for name in book.namelist()).decode("utf-8", "replace")
    assert "Xã Ẳng Tở" in text and ctx.settings.hub.site_name not in text
