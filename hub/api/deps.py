"""FastAPI dependencies: the hub context, a database session, the current user and role checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.db.models import User
from thanthien.hub.roles import Role
from thanthien.hub.services import media_items, users

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


def get_hub(request: Request) -> HubContext:
    return request.app.state.hub  # type: ignore[no-any-return]


Hub = Annotated[HubContext, Depends(get_hub)]


def get_session(hub: Hub, request: Request) -> Iterator[Session]:
    """A session for one request; routes that write call ``commit()`` themselves."""
    session = hub.db.new_session(write=request.method not in ("GET", "HEAD"))
    try:
        yield session
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_session)]


def current_user(hub: Hub, token: Annotated[str | None, Depends(oauth2)]) -> User:
    unauthorized = HTTPException(status.HTTP_401_UNAUTHORIZED, "Cần đăng nhập",
                                 headers={"WWW-Authenticate": "Bearer"})
    if not token:
        raise unauthorized
    with hub.db.session(write=False) as session:
        secret = hub.settings.http.secret_key.get_secret_value()
        user = users.user_from_token(session, token=token, secret=secret, now=hub.clock())
        if user is None:
            raise unauthorized
        session.expunge(user)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def token_node(session: DbSession, request: Request) -> str:
    """The node whose media token the request carries (``Authorization: Bearer``): a speaker's
    downloads (media, release bundles) are a node's, not a user's. 401 otherwise."""
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    node_id = media_items.node_for_token(session, token=token) if token else None
    if node_id is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Mã truy cập của nút không hợp lệ",
                            headers={"WWW-Authenticate": "Bearer"})
    return node_id


TokenNode = Annotated[str, Depends(token_node)]


class RoleGuard:
    """Lets through only users with one of ``roles`` (401 without a valid token, 403 otherwise)."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = roles

    def __call__(self, user: CurrentUser) -> User:
        if user.role not in self.roles:
            allowed = ", ".join(self.roles)
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"Vai trò {user.role!r} không được phép; cần một trong: {allowed}")
        return user


def allow(*roles: Role) -> Any:
    """``dependencies=[allow(*DEVICE_STAFF)]`` on a route or router (permissions: ``hub/roles.py``)."""
    return Depends(RoleGuard(tuple(roles)))


MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A row id (1 .. 2^63-1).")]
"""A path id no database column can overflow on (SQLite and PostgreSQL BIGINT)."""
OptionalRowId = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many rows (1 .. 1000).")]
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="Rows to skip (0 .. 2^63-1).")]
