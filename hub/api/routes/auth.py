"""Log in (username + password -> bearer token) and who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, allow
from thanthien.hub.api.schemas import Token, UserOut
from thanthien.hub.roles import EVERYONE
from thanthien.hub.services import users

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=Token, summary="Đăng nhập: username + password -> bearer token")
def login(hub: Hub, session: DbSession, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    user = users.authenticate(session, username=form.username, password=form.password)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sai tên đăng nhập hoặc mật khẩu",
                            headers={"WWW-Authenticate": "Bearer"})
    session.commit()  # a re-hashed password is kept
    ttl = hub.settings.http.token_ttl_s
    token = users.issue_token(user=user, secret=hub.settings.http.secret_key.get_secret_value(),
                              now=hub.clock(), ttl_s=ttl)
    return Token(access_token=token, expires_in=ttl, role=user.role)


@router.get("/me", response_model=UserOut, dependencies=[allow(*EVERYONE)])
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
