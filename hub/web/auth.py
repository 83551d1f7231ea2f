"""The UI's login session: the API's signed token in an HttpOnly cookie, a CSRF token derived
from it, and role checks that end in a login redirect or a Vietnamese refusal page.

The cookie holds the same token ``POST /api/v1/auth/login`` gives (users.issue_token), so the
users, roles, argon2 hashes and token versions are the API's: disabling a user or resetting a
password ends their UI session too.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Commune
from thanthien.hub.roles import ROLE_LABELS, Role
from thanthien.hub.services import logins, users

COOKIE = "thanthien_session"
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class UiUser:
    """Who is logged in, detached from any database session."""

    id: int
    username: str
    full_name: str
    role: str
    csrf: str
    commune_id: int | None = None  # None: a province user (hub/tenancy.py)
    commune_name: str = ""  # the header names it instead of the hub's site_name

    @property
    def display_name(self) -> str:
        return self.full_name or self.username

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)  # type: ignore[call-overload]


class LoginRequired(Exception):
    """No valid session: the handler redirects to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class Forbidden(Exception):
    """Logged in, but the role may not open this page: the handler shows a refusal page."""

    def __init__(self, user: UiUser, allowed: tuple[Role, ...]) -> None:
        super().__init__(user.role)
        self.user = user
        self.allowed = allowed


class BadCsrf(Exception):
    """A form posted without this session's CSRF token."""


def hub_of(request: Request) -> HubContext:
    return request.app.state.hub  # type: ignore[no-any-return]


def _secret(hub: HubContext) -> str:
    return hub.settings.http.secret_key.get_secret_value()


def csrf_for(hub: HubContext, token: str) -> str:
    return hmac.new(_secret(hub).encode(), b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


def session_user(request: Request) -> UiUser | None:
    """The user the session cookie names, if the token is valid and the user active."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        user = users.user_from_token(session, token=token, secret=_secret(hub), now=hub.clock())
        if user is None:
            return None
        commune = session.get(Commune, user.commune_id) if user.commune_id is not None else None
        return UiUser(id=user.id, username=user.username, full_name=user.full_name, role=user.role,
                      csrf=csrf_for(hub, token), commune_id=user.commune_id,
                      commune_name=commune.name if commune else "")


def _next_url(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return request.url.path + query


class Require:
    """Dependency: the logged-in user with one of ``roles`` (every role when empty); pass a
    permission of ``hub/roles.py``, the same the API route checks: ``Require(*DEVICE_STAFF)``."""

    def __init__(self, *roles: Role) -> None:
        self.roles = roles

    def __call__(self, request: Request) -> UiUser:
        user = session_user(request)
        if user is None:
            raise LoginRequired(_next_url(request))
        if self.roles and user.role not in self.roles:
            raise Forbidden(user, self.roles)
        return user


async def check_csrf(request: Request) -> None:
    """Dependency for every UI form POST."""
    form = await request.form()
    token = request.cookies.get(COOKIE, "")
    sent = str(form.get(CSRF_FIELD, ""))
    if not token or not hmac.compare_digest(sent, csrf_for(hub_of(request), token)):
        raise BadCsrf()


Csrf = Depends(check_csrf)


def login_user(hub: HubContext, *, username: str, password: str,
               address: str | None) -> tuple[str | None, logins.LoginResult]:
    """The session token for a right password (``None`` otherwise) and the login service's
    answer (its refusal message; ``retry_after_s`` when the throttle refused)."""
    with hub.db.session() as session:  # commits the failure counted, the reset, a re-hashed password
        result = logins.attempt(session, username=username, password=password, address=address,
                                now=hub.clock(), cfg=hub.settings.auth, tz=hub.settings.hub.timezone)
        if result.user is None:
            return None, result
        token = users.issue_token(user=result.user, secret=_secret(hub), now=hub.clock(),
                                  ttl_s=hub.settings.http.token_ttl_s)
        return token, result


AnyUser = Annotated[UiUser, Depends(Require())]
