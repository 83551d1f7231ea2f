"""Log in, log out, and the home page every role gets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from thanthien.hub.services import alarms, health, registry
from thanthien.hub.web import flash, queries
from thanthien.hub.web.auth import COOKIE, AnyUser, Csrf, hub_of, login_user, session_user
from thanthien.hub.web.templating import render

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    if session_user(request) is not None:
        return RedirectResponse(flash.safe_next(next), status_code=303)
    return render(request, "login.html", {"next": flash.safe_next(next), "error": ""}, user=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/ui/") -> Response:
    target = flash.safe_next(next)
    token, result = login_user(hub_of(request), username=username.strip(), password=password,
                               address=request.client.host if request.client else None)
    if token is None:
        context = {"next": target, "error": result.message, "username": username}
        status_code = 429 if result.throttled else 401
        response = render(request, "login.html", context, user=None, status_code=status_code)
        if result.throttled:
            response.headers["Retry-After"] = str(result.retry_after_s)
        return response
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=hub_of(request).settings.http.token_ttl_s, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout", dependencies=[Csrf])
def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: AnyUser) -> Response:
    """What each role can do, with a few numbers; officers see the zones and their speakers."""
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        context = {
            "node_counts": health.state_counts(session, viewer=user),
            "alarm_counts": alarms.active_counts(session, viewer=user),
            "zones": queries.speakers_by_zone(session, viewer=user),
            "counters": registry.list_counters(session, viewer=user),
        }
        return render(request, "home.html", context, user=user)
