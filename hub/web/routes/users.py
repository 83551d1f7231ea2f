"""User accounts (admin): create, change role, disable / enable, reset the password.

Every rule (username, lengths, roles, nobody locks themselves out) is the users service's;
these handlers only read the form and show the outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from thanthien.hub.api.deps import RowId
from thanthien.hub.roles import ADMINS, ROLE_LABELS
from thanthien.hub.services import users
from thanthien.hub.services.errors import ServiceError, http_status
from thanthien.hub.tenancy import is_province, list_communes
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

AdminUser = Annotated[UiUser, Depends(Require(*ADMINS))]
BACK = "/ui/users"


def _page(request: Request, user: UiUser, *, message: str = "", error: bool = False,
          form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        reached = list_communes(session, actor=user)
        context = {"users": users.list_users(session, viewer=user), "roles": ROLE_LABELS, "form": form or {},
                   "notice": (message, error) if message else None, "province": is_province(user),
                   "communes": reached, "commune_names": {c.id: c.name for c in reached}}
        return render(request, "users.html", context, user=user, status_code=status_code)


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, user: AdminUser, commune: str = "") -> Response:
    return _page(request, user, form={"commune": commune} if commune else None)


@router.post("/users", dependencies=[Csrf], response_class=HTMLResponse)
def create_user(request: Request, user: AdminUser, username: Annotated[str, Form()] = "",
                full_name: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "",
                password: Annotated[str, Form()] = "", commune: Annotated[str, Form()] = "") -> Response:
    form = {"username": username.strip(), "full_name": full_name.strip(), "role": role, "commune": commune}
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            created = users.create_user(session, actor=user, username=username, password=password, role=role,
                                        full_name=full_name, now=hub.clock(), commune=commune or None)
            name, label = created.username, ROLE_LABELS[created.role]  # type: ignore[index]
    except ServiceError as exc:
        return _page(request, user, message=str(exc), error=True, form=form, status_code=http_status(exc))
    return flash.redirect(BACK, message=f"Đã tạo người dùng {name} ({label})")


def _change(request: Request, user: UiUser, user_id: int, done: str, **change: object) -> Response:
    """Apply a change to a user and come back with ``done`` (``{name}`` is their username)."""
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            name = users.update_user(session, actor=user, user_id=user_id, now=hub.clock(),
                                     **change).username  # type: ignore[arg-type]
    except ServiceError as exc:
        return flash.refused(BACK, exc)
    return flash.redirect(BACK, message=done.format(name=name))


@router.post("/users/{user_id}/role", dependencies=[Csrf])
def change_role(request: Request, user: AdminUser, user_id: RowId,
                role: Annotated[str, Form()] = "") -> Response:
    label = ROLE_LABELS.get(role, role)  # type: ignore[call-overload]
    return _change(request, user, user_id, f"Đã đổi vai trò của {{name}} thành {label}", role=role)


@router.post("/users/{user_id}/active", dependencies=[Csrf])
def set_active(request: Request, user: AdminUser, user_id: RowId,
               active: Annotated[str, Form()] = "") -> Response:
    enable = active == "1"
    return _change(request, user, user_id, f"Đã {'mở khóa' if enable else 'khóa'} tài khoản {{name}}",
                   active=enable)


@router.post("/users/{user_id}/password", dependencies=[Csrf], response_class=HTMLResponse)
def reset_password(request: Request, user: AdminUser, user_id: RowId) -> Response:
    """A new random password, shown once on this page (never put in a URL or cookie); the
    user's sessions end."""
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            target, password = users.reset_password(session, actor=user, user_id=user_id, now=hub.clock())
            name = target.username
    except ServiceError as exc:
        return flash.refused(BACK, exc)
    return _page(request, user, message=f"Mật khẩu mới của {name}: {password} — hãy báo cho người dùng "
                                        "và đề nghị họ giữ kín.")
