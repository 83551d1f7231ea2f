"""One-shot messages shown on the next page after a form is posted (post, redirect, get)."""

from __future__ import annotations

from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from thanthien.hub.services.errors import Forbidden, ServiceError

COOKIE = "thanthien_flash"
SAFE_PREFIX = "/ui/"


def safe_next(target: str | None, default: str = "/ui/") -> str:
    """Only paths inside the UI: never another host (``//evil``) or a scheme."""
    if target and target.startswith(SAFE_PREFIX) and not target.startswith("//") and "\\" not in target:
        return target
    return default


def redirect(target: str, *, message: str = "", error: bool = False) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    if message:
        response.set_cookie(COOKIE, quote(("!" if error else "") + message), max_age=60, httponly=True,
                            samesite="lax", path="/ui")
    return response


def refused(target: str, exc: ServiceError) -> RedirectResponse:
    """Back to the form with a service's refusal; a ``Forbidden`` is raised again instead, so
    the page answers 403 as the API does (the UI's handler renders it)."""
    if isinstance(exc, Forbidden):
        raise exc
    return redirect(target, message=str(exc), error=True)


def take(request: Request) -> tuple[str, bool] | None:
    """The message waiting for this request, and whether it is an error."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    text = unquote(raw)[:500]
    return (text[1:], True) if text.startswith("!") else (text, False)


def clear(request: Request, response: Response) -> None:
    if COOKIE in request.cookies:
        response.delete_cookie(COOKIE, path="/ui")
