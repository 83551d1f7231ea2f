"""The administrative audit log for admins: who changed what and when, filtered by period,
kind of change, who made it and what it was made to; CSV/XLSX export of what the filter
selects (the audit service reads and exports, this page only shows)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from thanthien.hub.api.responses import attachment
from thanthien.hub.roles import ADMINS
from thanthien.hub.services import audit, reports
from thanthien.hub.services.audit import AuditFilter
from thanthien.hub.tenancy import heading
from thanthien.hub.web import periods
from thanthien.hub.web.auth import Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

AdminUser = Annotated[UiUser, Depends(Require(*ADMINS))]
PAGE_SIZE = 50


def _filter(request: Request, start: str, end: str, area: str, actor: str, subject: str) -> AuditFilter:
    """The filter of the form. Without dates, the whole log; a missing start is a year ago, a
    missing end today (``periods.PeriodError`` for dates that cannot be used)."""
    hub = hub_of(request)
    tz = hub.settings.hub.timezone
    period = None
    if start or end:
        day = periods.today(hub.clock(), tz)
        a_year = periods.Period(day - timedelta(days=365), day, tz)
        period = periods.parse(start or None, end or None, default=a_year)
    return AuditFilter(start=period.start if period else None, end=period.end if period else None,
                       area=area.strip()[:64] or None, actor=actor.strip()[:64] or None,
                       subject=subject.strip()[:255] or None)


def _row(entry: Any, tz: str) -> dict[str, Any]:
    return {"at": entry.at, "actor": entry.actor_username, "action": entry.action,
            "role": audit.role_label(entry),
            "label": audit.action_label(entry.action), "subject": entry.subject,
            "details": audit.describe(entry.details, tz)}


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: AdminUser, start: str = "", end: str = "", area: str = "",
               actor: str = "", subject: str = "", page: int = 1) -> Response:
    form = {"start": start, "end": end, "area": area, "actor": actor, "subject": subject}
    context: dict[str, Any] = {"form": form, "query": {k: v for k, v in form.items() if v},
                               "areas": audit.AREAS, "entries": [], "total": 0, "page": 1, "pages": 1,
                               "error": ""}
    try:
        flt = _filter(request, start, end, area, actor, subject)
    except periods.PeriodError as exc:
        return render(request, "audit.html", {**context, "error": str(exc)}, user=user, status_code=422)
    page = max(1, min(page, 10**6))
    with hub_of(request).db.new_session(write=False) as session:
        found = audit.list_entries(session, actor=user, flt=flt, limit=PAGE_SIZE,
                                   offset=(page - 1) * PAGE_SIZE)
        tz = hub_of(request).settings.hub.timezone
        context.update(entries=[_row(e, tz) for e in found.entries], total=found.total, page=page,
                       pages=max(1, -(-found.total // PAGE_SIZE)))
    return render(request, "audit.html", context, user=user)


@router.get("/audit/export")
def audit_export(request: Request, user: AdminUser, format: reports.ExportFormat = "xlsx", start: str = "",
                 end: str = "", area: str = "", actor: str = "", subject: str = "") -> Response:
    hub = hub_of(request)
    try:
        flt = _filter(request, start, end, area, actor, subject)
    except periods.PeriodError as exc:
        return render(request, "message.html", {"title": "Không xuất được nhật ký", "message": str(exc)},
                      user=user, status_code=422)
    with hub.db.new_session(write=False) as session:
        name = heading(session, viewer=user, site_name=hub.settings.hub.site_name)
        return attachment(audit.export(session, actor=user, flt=flt, format=format,
                                       tz=hub.settings.hub.timezone, title=f"Nhật ký quản trị — {name}"))
