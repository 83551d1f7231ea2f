"""The Vietnamese web UI: server-rendered pages under ``/ui`` on the hub's own app.

``include_routes(router)`` adds the page routes (the app factory includes them once per
process); ``install(app)`` mounts the static files and the handlers that turn a missing login
into a redirect and a role that may not see a page into a refusal page.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from thanthien.hub.roles import ROLE_LABELS
from thanthien.hub.services.errors import ServiceError, http_status
from thanthien.hub.web.auth import BadCsrf, Forbidden, LoginRequired, session_user
from thanthien.hub.web.flash import safe_next
from thanthien.hub.web.routes import (
    audit,
    broadcasts,
    communes,
    dossiers,
    events,
    faults,
    fleet,
    health,
    live,
    media,
    notify,
    province,
    public,
    registry,
    releases,
    roster,
    satisfaction,
    session,
    users,
)
from thanthien.hub.web.templating import HERE, render

PREFIX = "/ui"
ROUTERS = (session.router, health.router, satisfaction.router, users.router, events.router, broadcasts.router,
           media.router, audit.router, dossiers.router, notify.router, fleet.router, registry.router,
           roster.router, faults.router, releases.router, live.router, communes.router, province.router)
REFUSALS = {403: "Không có quyền thực hiện", 404: "Không tìm thấy", 409: "Không thực hiện được",
            422: "Thông tin chưa hợp lệ", 503: "Dịch vụ tạm thời không sẵn sàng"}


def include_routes(router: APIRouter) -> None:
    """The UI's pages (under ``/ui``) and the public pages (under ``/p``) into ``router``."""
    for pages in ROUTERS:
        router.include_router(pages, prefix=PREFIX, include_in_schema=False)
    router.include_router(public.router, prefix=public.PUBLIC, include_in_schema=False)


def install(app: FastAPI, *, poll_s: float = 2.0) -> None:
    """Add the UI's static files and error pages to the hub's app, whose routes hold the
    pages (:func:`include_routes`); ``poll_s`` is how often live pages look for changes."""
    app.state.ui_poll_s = poll_s
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=303)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if request.url.path == f"{PREFIX}/events":
            return Response("Cần đăng nhập", status_code=401)
        return RedirectResponse(f"{PREFIX}/login?next={quote(safe_next(exc.next_url), safe='/')}",
                                status_code=303)

    api_errors = app.exception_handlers.get(ServiceError)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        """A service's refusal on a page the handler did not catch: a Vietnamese page with the
        same status the API answers (the API's own JSON answer elsewhere)."""
        if not request.url.path.startswith((f"{PREFIX}/", f"{public.PUBLIC}/")) and api_errors is not None:
            return await api_errors(request, exc)  # type: ignore[no-any-return, misc]
        code = http_status(exc)
        return render(request, "message.html", {"title": REFUSALS.get(code, "Không thực hiện được"),
                                                "message": str(exc)},
                      user=session_user(request), status_code=code)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        allowed = ", ".join(ROLE_LABELS[r] for r in exc.allowed)
        return render(request, "message.html", {
            "title": "Không có quyền truy cập",
            "message": f"Tài khoản của bạn ({exc.user.role_label}) không được xem trang này. "
                       f"Trang này dành cho: {allowed}."}, user=exc.user, status_code=403)

    @app.exception_handler(BadCsrf)
    async def _csrf(request: Request, _exc: BadCsrf) -> Response:
        return render(request, "message.html", {
            "title": "Phiên làm việc đã hết hạn",
            "message": "Biểu mẫu không còn hợp lệ. Hãy tải lại trang rồi thử lại."},
            user=session_user(request), status_code=403)
