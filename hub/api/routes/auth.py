"""Log in (username + password -> bearer token) and who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, allow
from thanthien.hub.api.schemas import Token, UserOut
from thanthien.hub.roles import EVERYONE
from thanthien.hub.services import logins, users

router = APIRouter(prefix="/auth", tags=["auth"])

REFUSALS = {401: {"description": "Wrong username or password"},
            429: {"description": "Too many wrong logins of this account or from this address: the "
                                 "Vietnamese message says when to try again, as does Retry-After (s)"}}


@router.post("/login", response_model=Token, responses=REFUSALS,
             summary="Đăng nhập: username + password -> bearer token (throttled after wrong passwords)")
def login(hub: Hub, session: DbSession, request: Request,
          form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    result = logins.attempt(session, username=form.username, password=form.password,
                            address=request.client.host if request.client else None, now=hub.clock(),
                            cfg=hub.settings.auth, tz=hub.settings.hub.timezone)
    session.commit()  # the failure counted, the account's count reset, a re-hashed password kept
    if result.throttled:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, result.message,
                            headers={"Retry-After": str(result.retry_after_s)})
    if result.user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, result.message,
                            headers={"WWW-Authenticate": "Bearer"})
    ttl = hub.settings.http.token_ttl_s
    token = users.issue_token(user=result.user, secret=hub.settings.http.secret_key.get_secret_value(),
                              now=hub.clock(), ttl_s=ttl)
    return Token(access_token=token, expires_in=ttl, role=result.user.role)


@router.get("/me", response_model=UserOut, dependencies=[allow(*EVERYONE)])
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
