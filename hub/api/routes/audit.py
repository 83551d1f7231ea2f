"""The administrative audit log (admins): who changed which user, registry row, roster
shift, node credential, media file or broadcast rule, and when; CSV/XLSX export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, allow
from thanthien.hub.api.responses import attachment
from thanthien.hub.api.schemas import AdminAuditOut, AdminAuditPage
from thanthien.hub.roles import ADMINS
from thanthien.hub.services import audit, reports
from thanthien.hub.services.audit import AuditFilter
from thanthien.hub.tenancy import heading

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[allow(*ADMINS)])

Start = Annotated[AwareDatetime | None, Query(description="ISO 8601 with offset, inclusive")]
End = Annotated[AwareDatetime | None, Query(description="ISO 8601 with offset, exclusive")]
Area = Annotated[str | None, Query(max_length=64,
                                   description="An area (user, node, …) or an action (user.role)")]
ActorName = Annotated[str | None, Query(max_length=64, description="Username of whoever made the change")]
Subject = Annotated[str | None, Query(max_length=255, description="Part of the subject (any case)")]


@router.get("", response_model=AdminAuditPage, summary="The audit log, newest first")
def list_audit(session: DbSession, user: CurrentUser, start: Start = None, end: End = None, area: Area = None,
               actor: ActorName = None, subject: Subject = None,
               limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
               offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> AdminAuditPage:
    flt = AuditFilter(start=start, end=end, area=area, actor=actor, subject=subject)
    page = audit.list_entries(session, actor=user, flt=flt, limit=limit, offset=offset)
    return AdminAuditPage(total=page.total, entries=[AdminAuditOut.of(e) for e in page.entries])


@router.get("/export", summary="The audit log as CSV or Excel (Vietnamese headings, local times)",
            response_class=Response, responses={200: {"content": {"text/csv": {}, reports.XLSX_MIME: {}}}})
def export_audit(hub: Hub, session: DbSession, user: CurrentUser, format: reports.ExportFormat = "xlsx",
                 start: Start = None, end: End = None, area: Area = None, actor: ActorName = None,
                 subject: Subject = None) -> Response:
    flt = AuditFilter(start=start, end=end, area=area, actor=actor, subject=subject)
    name = heading(session, viewer=user, site_name=hub.settings.hub.site_name)
    return attachment(audit.export(session, actor=user, flt=flt, format=format, tz=hub.settings.hub.timezone,
                                   title=f"Nhật ký quản trị — {name}"))
