"""User accounts (admin): create, change role, disable / enable, reset the password."""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from thanthien.hub.services import users
from thanthien.hub.services.errors import Conflict, NotFound, ServiceError
from thanthien.hub.web import flash
from thanthien.hub.web.auth import ROLE_LABELS, Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

AdminUser = Annotated[UiUser, Depends(Require("admin"))]
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
BACK = "/ui/users"


def _page(request: Request, user: UiUser, *, message: str = "", error: bool = False,
          form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        context = {"users": users.list_users(session), "roles": ROLE_LABELS, "form": form or {},
                   "notice": (message, error) if message else None}
        return render(request, "users.html", context, user=user, status_code=status_code)


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, user: AdminUser) -> Response:
    return _page(request, user)


@router.post("/users", dependencies=[Csrf], response_class=HTMLResponse)
def create_user(request: Request, user: AdminUser, username: Annotated[str, Form()] = "",
                full_name: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "",
                password: Annotated[str, Form()] = "") -> Response:
    username, full_name = username.strip(), full_name.strip()
    form = {"username": username, "full_name": full_name, "role": role}
    problem = ""
    if not USERNAME.match(username):
        problem = "Tên đăng nhập chỉ gồm chữ không dấu, số và . _ @ - (tối đa 64 ký tự)"
    elif role not in users.ROLES:
        problem = "Hãy chọn vai trò"
    elif len(full_name) > 200:
        problem = "Họ tên quá dài (tối đa 200 ký tự)"
    elif len(password) < users.MIN_PASSWORD or len(password) > 200:
        problem = f"Mật khẩu phải có từ {users.MIN_PASSWORD} đến 200 ký tự"
    if problem:
        return _page(request, user, message=problem, error=True, form=form, status_code=422)
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            users.create_user(session, username=username, password=password, role=role, full_name=full_name,
                              now=hub.clock())
    except Conflict:
        return _page(request, user, message=f"Tên đăng nhập {username} đã có người dùng", error=True,
                     form=form, status_code=409)
    return flash.redirect(BACK, message=f"Đã tạo người dùng {username} ({ROLE_LABELS[role]})")


def _change(request: Request, user: UiUser, user_id: int, **change: object) -> str:
    """Apply a change to another user; returns their username. Raises ServiceError."""
    if user_id == user.id:
        raise ServiceError("Không thể tự đổi vai trò hay khóa tài khoản của chính mình")
    hub = hub_of(request)
    with hub.db.session() as session:
        return users.update_user(session, user_id=user_id, **change).username  # type: ignore[arg-type]


@router.post("/users/{user_id}/role", dependencies=[Csrf])
def change_role(request: Request, user: AdminUser, user_id: int,
                role: Annotated[str, Form()] = "") -> Response:
    if role not in users.ROLES:
        return flash.redirect(BACK, message="Vai trò không hợp lệ", error=True)
    try:
        name = _change(request, user, user_id, role=role)
    except NotFound:
        return flash.redirect(BACK, message="Không tìm thấy người dùng", error=True)
    except ServiceError as exc:
        return flash.redirect(BACK, message=str(exc), error=True)
    return flash.redirect(BACK, message=f"Đã đổi vai trò của {name} thành {ROLE_LABELS[role]}")


@router.post("/users/{user_id}/active", dependencies=[Csrf])
def set_active(request: Request, user: AdminUser, user_id: int,
               active: Annotated[str, Form()] = "") -> Response:
    enable = active == "1"
    try:
        name = _change(request, user, user_id, active=enable)
    except NotFound:
        return flash.redirect(BACK, message="Không tìm thấy người dùng", error=True)
    except ServiceError as exc:
        return flash.redirect(BACK, message=str(exc), error=True)
    return flash.redirect(BACK, message=f"Đã {'mở khóa' if enable else 'khóa'} tài khoản {name}")


@router.post("/users/{user_id}/password", dependencies=[Csrf], response_class=HTMLResponse)
def reset_password(request: Request, user: AdminUser, user_id: int) -> Response:
    """A new random password, shown once on this page (never put in a URL or cookie); the
    user's sessions end."""
    if user_id == user.id:
        return flash.redirect(BACK, message="Không thể tự đặt lại mật khẩu của chính mình ở đây", error=True)
    password = secrets.token_urlsafe(9)
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            name = users.update_user(session, user_id=user_id, password=password).username
    except NotFound:
        return flash.redirect(BACK, message="Không tìm thấy người dùng", error=True)
    return _page(request, user, message=f"Mật khẩu mới của {name}: {password} — hãy báo cho người dùng "
                                        "và đề nghị họ giữ kín.")
