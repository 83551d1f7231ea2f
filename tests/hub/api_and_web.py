"""One hub app asked through both doors: the API (bearer token) and the web UI (session cookie
and CSRF), with one user per role named after the role. The parity tests use it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi.testclient import TestClient

from support import bearer, ui_login
from thanthien.hub.app import create_app
from thanthien.hub.context import HubContext
from thanthien.hub.roles import ROLES, SYSTEM
from thanthien.hub.services import users
from thanthien.hub.web.auth import COOKIE, CSRF_FIELD, csrf_for

PASSWORD = "mat-khau-dung-2026"


@dataclass
class Hub:
    ctx: HubContext
    api: TestClient
    web: TestClient
    ids: dict[str, int]

    def headers(self, role: str) -> dict[str, str]:
        return bearer(self.api, role, PASSWORD)

    def login(self, role: str) -> TestClient:
        self.web.cookies.clear()
        return ui_login(self.web, role, PASSWORD)

    def form(self, **fields: str) -> dict[str, str]:
        """Form fields with the CSRF token of the logged-in web session."""
        return {**fields, CSRF_FIELD: csrf_for(self.ctx, self.web.cookies[COOKIE])}


@contextmanager
def open_hub(ctx: HubContext) -> Iterator[Hub]:
    """The hub's app (API and UI) with one user per role, named after the role."""
    with ctx.db.session() as s:
        ids = {role: users.create_user(s, actor=SYSTEM, username=role, password=PASSWORD, role=role,
                                       now=ctx.clock()).id for role in ROLES}
    app = create_app(ctx.settings, ctx.db, ctx=ctx)
    with TestClient(app, follow_redirects=False) as api, TestClient(app, follow_redirects=False) as web:
        yield Hub(ctx, api, web, ids)
