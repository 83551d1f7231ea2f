"""Dossiers at the counter (officers, admins): record one, find one, mark it supplement needed
or result ready; the citizen's notices follow (``services/dossiers.py``). Ratings by SMS reply
per counter and officer (leaders, admins)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from thanthien.hub.db.models import SmsMessage
from thanthien.hub.roles import DOSSIER_OFFICERS, REPORT_READERS
from thanthien.hub.services import dossiers, registry, sms_outbox, sms_templates
from thanthien.hub.services.errors import Invalid, ServiceError, http_status
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

Officer = Annotated[UiUser, Depends(Require(*DOSSIER_OFFICERS))]
Reader = Annotated[UiUser, Depends(Require(*REPORT_READERS))]
BACK = "/ui/dossiers"


def _due(value: str, tz: ZoneInfo) -> datetime | None:
    if not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=tz)
    except ValueError as exc:
        raise Invalid("Hạn trả kết quả không đúng dạng ngày giờ") from exc


def _page(
    request: Request,
    user: UiUser,
    *,
    q: str = "",
    form: dict[str, str] | None = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        context = {
            "dossiers": dossiers.list_dossiers(session, viewer=user, query=q[:100], limit=100),
            "q": q,
            "counters": registry.list_counters(session, viewer=user),
            "officers": registry.list_officers(session, viewer=user),
            "form": form or {},
            "error": error,
            "statuses": dossiers.STATUSES,
        }
        return render(request, "dossiers.html", context, user=user, status_code=status_code)


@router.get("/dossiers", response_class=HTMLResponse)
def dossiers_page(request: Request, user: Officer, q: str = "") -> Response:
    return _page(request, user, q=q)


@router.post("/dossiers", dependencies=[Csrf], response_class=HTMLResponse)
def create_dossier(
    request: Request,
    user: Officer,
    code: Annotated[str, Form()] = "",
    procedure: Annotated[str, Form()] = "",
    citizen_name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    counter: Annotated[str, Form()] = "",
    officer_id: Annotated[str, Form()] = "",
    due_at: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "code": code,
        "procedure": procedure,
        "citizen_name": citizen_name,
        "phone": phone,
        "counter": counter,
        "officer_id": officer_id,
        "due_at": due_at,
    }
    hub = hub_of(request)
    tz = ZoneInfo(hub.settings.hub.timezone)
    try:
        with hub.db.session() as session:
            dossier = dossiers.create(
                session,
                actor=user,
                code=code,
                procedure=procedure,
                citizen_name=citizen_name,
                phone=phone,
                counter=counter or None,
                officer_id=int(officer_id) if officer_id.isdigit() else None,
                due_at=_due(due_at, tz),
                source="counter",
                now=hub.clock(),
                tz=tz,
                cfg=hub.settings.sms,
            )
            done = dossier.code
    except ServiceError as exc:
        return _page(request, user, form=form, error=str(exc), status_code=http_status(exc))
    return flash.redirect(
        f"{BACK}/{done}", message=f"Đã ghi nhận hồ sơ {done}; tin nhắn tiếp nhận đã vào hàng đợi"
    )


@router.get("/dossiers/{code}", response_class=HTMLResponse)
def dossier_page(request: Request, user: Officer, code: str) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        dossier = dossiers.get(session, code, viewer=user)
        events = dossiers.events_of(session, dossier, viewer=user)
        messages = {m.id: m for m in session.query(SmsMessage).filter(SmsMessage.dossier_id == dossier.id)}
        context = {
            "d": dossiers.view(session, dossier, viewer=user),
            "events": events,
            "messages": messages,
            "kinds": sms_templates.KINDS,
            "statuses": dossiers.STATUSES,
            "sms_statuses": sms_outbox.STATUSES,
        }
        return render(request, "dossier_detail.html", context, user=user)


@router.post("/dossiers/{code}/events", dependencies=[Csrf])
def add_event(
    request: Request,
    user: Officer,
    code: str,
    kind: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    hub = hub_of(request)
    back = f"{BACK}/{code}"
    try:
        with hub.db.session() as session:
            outcome = dossiers.add_event(
                session,
                actor=user,
                code=code,
                kind=kind,
                note=note,
                now=hub.clock(),
                tz=ZoneInfo(hub.settings.hub.timezone),
                cfg=hub.settings.sms,
            )
            created = outcome.created
    except ServiceError as exc:
        return flash.refused(back, exc)
    label = sms_templates.KINDS.get(kind, kind)
    return flash.redirect(back, message=f"Đã ghi: {label}" if created else f"'{label}' đã được ghi trước đó")


@router.get("/dossiers-export.csv")
def export(request: Request, user: Officer, q: str = "") -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        views = dossiers.list_dossiers(session, viewer=user, query=q[:100], limit=10_000)
    body = dossiers.export_csv(views, tz=ZoneInfo(hub.settings.hub.timezone))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="ho-so.csv"'},
    )


@router.get("/dossier-ratings", response_class=HTMLResponse)
def ratings_page(request: Request, user: Reader, days: int = 90) -> Response:
    hub = hub_of(request)
    end = hub.clock()
    start = end - timedelta(days=max(1, min(days, 3660)))
    with hub.db.new_session(write=False) as session:
        context = {
            "days": days,
            "by_counter": dossiers.rating_summary(session, viewer=user, start=start, end=end, by="counter"),
            "by_officer": dossiers.rating_summary(session, viewer=user, start=start, end=end, by="officer"),
        }
        return render(request, "dossier_ratings.html", context, user=user)
