"""A commune's users cannot read or change another commune's data through any route (issue 20).

Every operation of the OpenAPI document and every page of the web UI is called by each of
commune A's users with commune B's ids and codes (``walk.py``). What still leaks is listed in
``known_leaks.txt``, room by room, while tenancy reaches every room: the test fails on a leak
not listed there, and on a listed one that no longer leaks (so the list only shrinks).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.tenancy import seed_broadcasts, seed_devices, seed_people, seed_registry, walk
from support import bearer, ui_login
from thanthien.hub.app import create_app
from thanthien.hub.db.models import Commune
from thanthien.hub.roles import ROLES, SYSTEM
from thanthien.hub.services import communes
from thanthien.hub.web import PREFIX, ROUTERS
from thanthien.hub.web.auth import COOKIE, CSRF_FIELD, csrf_for

pytestmark = [pytest.mark.usefixtures("cheap_hashing"), pytest.mark.slow]

SEEDERS = (seed_devices, seed_broadcasts, seed_people)


def _seed(session: Any, *, commune: str, prefix: str, marker: str, now: Any) -> dict[str, Any]:
    ids = seed_registry.seed(session, commune=commune, prefix=prefix, marker=marker, now=now)
    for seeder in SEEDERS:
        ids.update(seeder.seed(session, commune=commune, prefix=prefix, marker=marker, now=now, registry=ids))
    ids["commune"] = ids["communes.code"] = commune
    return ids


@pytest.fixture
def two_communes(ctx) -> Iterator[tuple[TestClient, dict[str, Any], dict[str, Any]]]:
    now = ctx.clock()
    with ctx.db.session() as s:
        s.scalar(select(Commune).where(Commune.code == "home")).name = f"Thị trấn {walk.MARKER_A}"
        communes.create_commune(s, actor=SYSTEM, code="xb", name=f"Xã {walk.MARKER_B}", now=now)
        a = _seed(s, commune="home", prefix="xa", marker=walk.MARKER_A, now=now)
        b = _seed(s, commune="xb", prefix="xb", marker=walk.MARKER_B, now=now)
    app = create_app(ctx.settings, ctx.db, ctx=ctx)
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as client:
        yield client, a, b


def _api_leaks(client: TestClient, ctx: Any, a: dict[str, Any], b: dict[str, Any],
               writes: walk.Writes) -> list[walk.Leak]:
    spec = client.get("/api/v1/openapi.json").json()
    leaks: list[walk.Leak] = []
    with ctx.db.engine.connect() as conn:
        before = walk.rows_of(conn, walk.MARKER_B, walk.CODE_B)
    for role in ROLES:
        headers = bearer(client, a["usernames"][role], seed_registry.PASSWORD)
        writes.took()
        for method, template, op in walk.operations(spec):
            path = walk.fill_path(template, b)
            if path is None:
                leaks.append(walk.Leak(method, template, "a path parameter the seeders do not fill"))
                continue
            schema = (op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema"))
            body = walk.body_for(schema, spec, b) if schema else None
            url = path if path.startswith("/api") else "/api/v1" + path
            response = client.request(method, url, headers=headers, json=body)
            if response.status_code >= 500 and response.status_code != 503:  # 503: no MQTT link here
                leaks.append(walk.Leak(method, template, f"{role}: {response.status_code}"))
            elif walk.shows_b(response.content, response.headers.get("content-type", ""), f"{path} {body}"):
                leaks.append(walk.Leak(method, template, f"{role}: the answer shows commune B"))
            query = walk.aimed_query(op, b) if method == "GET" else {}
            if query:  # a search or a filter for something of B
                aimed = client.get(url, headers=headers, params=query)
                assert aimed.status_code != 404 or "{" in template, (url, aimed.text)  # it reached the route
                if walk.shows_marker(aimed.content, aimed.headers.get("content-type", "")):
                    leaks.append(walk.Leak(method, template, f"{role}: a search for {query} shows commune B"))
            if method != "GET" and writes.took():  # no write ran: no row of B changed
                with ctx.db.engine.connect() as conn:
                    after = walk.rows_of(conn, walk.MARKER_B, walk.CODE_B)
                if after != before:
                    leaks.append(walk.Leak(method, template, f"{role}: a row of commune B changed"))
                    before = after
    return leaks


def _web_post_leaks(client: TestClient, ctx: Any, a: dict[str, Any], b: dict[str, Any],
                    writes: walk.Writes) -> list[walk.Leak]:
    """Every form of the web UI posted by each of A's users with B's ids and codes."""
    posts = sorted(((PREFIX + route.path, route) for router in ROUTERS for route in router.routes
                    if "POST" in getattr(route, "methods", set())
                    and PREFIX + route.path not in walk.NOT_POSTED), key=lambda pair: pair[0])
    leaks: list[walk.Leak] = []
    with ctx.db.engine.connect() as conn:
        before = walk.rows_of(conn, walk.MARKER_B, walk.CODE_B)
    for role in ROLES:
        client.cookies.clear()
        ui_login(client, a["usernames"][role], seed_registry.PASSWORD)
        for template, route in posts:
            path = walk.fill_path(template, b)
            if path is None:
                leaks.append(walk.Leak("POST", template, "a path parameter the seeders do not fill"))
                continue
            form = {**walk.form_for(route, b), CSRF_FIELD: csrf_for(ctx, client.cookies[COOKIE])}
            writes.took()
            response = client.post(path, data=form)
            if response.status_code >= 500 and response.status_code != 503:
                leaks.append(walk.Leak("POST", template, f"{role}: {response.status_code}"))
            if not writes.took():  # no write ran: no row of B changed
                continue
            with ctx.db.engine.connect() as conn:
                after = walk.rows_of(conn, walk.MARKER_B, walk.CODE_B)
            if after != before:
                changed = sorted(set().union(*after.values()) ^ set().union(*before.values()))[:2]
                leaks.append(walk.Leak("POST", template, f"{role}: a row of commune B changed: {changed}"))
                before = after
    client.cookies.clear()
    return leaks


def _web_leaks(client: TestClient, a: dict[str, Any], b: dict[str, Any]) -> list[walk.Leak]:
    pages = sorted({PREFIX + route.path for router in ROUTERS for route in router.routes
                    if "GET" in getattr(route, "methods", set())
                    and PREFIX + route.path not in walk.NOT_WALKED})
    leaks: list[walk.Leak] = []
    for role in ROLES:
        client.cookies.clear()
        ui_login(client, a["usernames"][role], seed_registry.PASSWORD)
        for template in pages:
            path = walk.fill_path(template, b)
            if path is None:
                leaks.append(walk.Leak("GET", template, "a path parameter the seeders do not fill"))
                continue
            response = client.get(path)
            if response.status_code >= 500 and response.status_code != 503:  # 503: no MQTT link here
                leaks.append(walk.Leak("GET", template, f"{role}: {response.status_code}"))
            elif walk.shows_b(response.content, response.headers.get("content-type", ""), path):
                leaks.append(walk.Leak("GET", template, f"{role}: the page shows commune B"))
    client.cookies.clear()
    return leaks


def _unlisted(leaks: list[walk.Leak]) -> tuple[list[str], list[str]]:
    """The leaks not in known_leaks.txt (with why), and the listed lines that no longer leak."""
    found = {leak.key for leak in leaks}
    known = walk.known_leaks()
    new = found - known
    return (sorted({f"{leak.key}  ({leak.why})" for leak in leaks if leak.key in new}), sorted(known - found))


def test_a_commune_user_sees_and_changes_nothing_of_another_commune(ctx, two_communes):
    client, a, b = two_communes
    with walk.Writes(ctx.db.engine) as writes:
        leaks = (_api_leaks(client, ctx, a, b, writes) + _web_leaks(client, a, b)
                 + _web_post_leaks(client, ctx, a, b, writes))
    new, fixed = _unlisted(leaks)
    assert new == [], "leaks not in known_leaks.txt:\n  " + "\n  ".join(new)
    assert fixed == [], "in known_leaks.txt, no longer leaking (remove them):\n  " + "\n  ".join(fixed)


def test_the_walk_sees_a_commune_s_own_names(ctx, two_communes):
    """The check can fail: A's own pages and answers do show A's names."""
    client, a, _b = two_communes
    headers = bearer(client, a["usernames"]["admin"], seed_registry.PASSWORD)
    answer = client.get("/api/v1/zones", headers=headers)
    assert walk.shows_marker(answer.content, "", walk.MARKER_A)
    ui_login(client, a["usernames"]["admin"], seed_registry.PASSWORD)
    assert walk.shows_marker(client.get("/ui/registry/places").content, "", walk.MARKER_A)


def test_a_province_user_reads_both_communes(ctx, two_communes):
    client, _a, _b = two_communes
    with ctx.db.session() as s:
        from thanthien.hub.services import users

        users.create_user(s, actor=SYSTEM, username="tinh", password=seed_registry.PASSWORD, role="admin",
                          now=ctx.clock())
    answer = client.get("/api/v1/zones", headers=bearer(client, "tinh", seed_registry.PASSWORD))
    assert walk.shows_marker(answer.content, "", walk.MARKER_A)
    assert walk.shows_marker(answer.content, "", walk.MARKER_B)
