"""Residents' fault reports for IT (``services/fault_reports.py``): the tickets, open first and
soonest due first, the public answer, and the QR code to print for each speaker's pole."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from thanthien.hub.api.deps import RowId
from thanthien.hub.roles import DEVICE_STAFF
from thanthien.hub.services import enrollment, fault_reports, registry
from thanthien.hub.services.errors import ServiceError
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()
Staff = Annotated[UiUser, Depends(Require(*DEVICE_STAFF))]
BACK = "/ui/faults"


def pole_url(base: str, node_id: str, device_code: str) -> str:
    return f"{base.rstrip('/')}/p/loa/{node_id}/{device_code}"


@router.get("/faults")
def faults_page(request: Request, user: Staff) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        context = {
            "tickets": fault_reports.list_reports(session, viewer=user),
            "zones": {z.id: z.name for z in registry.list_zones(session, viewer=user)},
            "kinds": fault_reports.KINDS, "statuses": fault_reports.STATUSES,
            "speakers": [d for d in registry.list_devices(session, viewer=user, active=True)
                         if d.kind == "speaker"],
        }
        return render(request, "faults.html", context, user=user)


@router.post("/faults/{report_id}/answer", dependencies=[Csrf])
def answer_ticket(request: Request, user: Staff, report_id: RowId,
                  answer: Annotated[str, Form()] = "") -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            ticket = fault_reports.answer(session, actor=user, report_id=report_id, text=answer,
                                          now=hub.clock())
            code = ticket.code
    except ServiceError as exc:
        return flash.refused(f"{BACK}#p{report_id}", exc)
    return flash.redirect(f"{BACK}#p{report_id}", message=f"Đã trả lời phản ánh {code}")


@router.get("/faults/qr/{node_id}/{device_code}")
def pole_qr(request: Request, user: Staff, node_id: str, device_code: str) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        pole = fault_reports.pole(session, node_id=node_id, device_code=device_code, viewer=user)
    url = pole_url(hub.settings.public.base_url or str(request.base_url), node_id, device_code)
    return render(request, "fault_qr.html", {"pole": pole, "url": url, "qr": enrollment.qr_svg(url)},
                  user=user)
