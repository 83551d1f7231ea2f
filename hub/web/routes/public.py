"""The public pages, without login (``/p/``): the transparency page of each commune
(``/p/<code>/``; ``/p/`` lists them, or is the only one's), and the fault report a
resident makes from the QR code on a loudspeaker pole (``services/transparency.py``,
``services/fault_reports.py``); these handlers read the form and call them."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Commune
from thanthien.hub.services import fault_reports, transparency
from thanthien.hub.services.errors import ServiceError, Throttled, http_status
from thanthien.hub.web.auth import hub_of
from thanthien.hub.web.templating import render

router = APIRouter()
PUBLIC = "/p"


@router.get("/")
def public_index(request: Request) -> Response:
    """The communes' pages; with one commune, its page."""
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        communes = transparency.communes(session)
        if len(communes) == 1:
            return _commune_page(request, session, communes[0])
        return render(request, "public_index.html", {"communes": communes, "home": f"{PUBLIC}/"}, user=None)


@router.get("/{commune_code}/")
def public_page(request: Request, commune_code: str) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        return _commune_page(request, session, transparency.commune(session, commune_code))


def _commune_page(request: Request, session: Session, commune: Commune) -> Response:
    hub = hub_of(request)
    figures = transparency.summary(session, commune=commune, now=hub.clock(),
                                   tz=ZoneInfo(hub.settings.hub.timezone), cfg=hub.settings.public)
    return render(request, "public.html", {"s": figures, "home": f"{PUBLIC}/", "site_name": commune.name},
                  user=None)


def _form(request: Request, *, node_id: str, device_code: str, kind: str = "", message: str = "",
          error: str = "", status_code: int = 200) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        pole = fault_reports.pole(session, node_id=node_id, device_code=device_code)
    return render(request, "public_report.html", {
        "pole": pole, "kinds": fault_reports.KINDS, "kind": kind, "message": message, "error": error,
        "home": f"{PUBLIC}/", "limit": fault_reports.MESSAGE_MAX}, user=None, status_code=status_code)


@router.get("/loa/{node_id}/{device_code}")
def report_form(request: Request, node_id: str, device_code: str) -> Response:
    return _form(request, node_id=node_id, device_code=device_code)


@router.post("/loa/{node_id}/{device_code}")
def send_report(request: Request, node_id: str, device_code: str, kind: Annotated[str, Form()] = "",
                message: Annotated[str, Form()] = "") -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            address = request.client.host if request.client else None
            ticket = fault_reports.report(session, node_id=node_id, device_code=device_code, kind=kind,
                                          message=message, address=address, now=hub.clock(),
                                          cfg=hub.settings.public)
            code = ticket.code
    except ServiceError as exc:
        response = _form(request, node_id=node_id, device_code=device_code, kind=kind, message=message[:2000],
                         error=str(exc), status_code=http_status(exc))
        if isinstance(exc, Throttled):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    return RedirectResponse(f"{PUBLIC}/phan-anh/{code}?moi=1", status_code=303)


@router.get("/phan-anh/{code}")
def ticket_page(request: Request, code: str, moi: int = 0) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        ticket = fault_reports.public_ticket(session, code=code)
        pole = fault_reports.pole_of(session, ticket)
        return render(request, "public_ticket.html", {
            "t": ticket, "pole": pole, "kinds": fault_reports.KINDS, "statuses": fault_reports.STATUSES,
            "new": bool(moi), "home": f"{PUBLIC}/"}, user=None)
