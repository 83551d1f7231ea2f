"""Dossiers and their events: the one-stop software (or an officer) records them, the citizen
is told by SMS (``services/dossiers.py`` has every rule)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Response, status
from pydantic import AwareDatetime

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, Limit, Offset, allow
from thanthien.hub.api.schemas_notify import (
    DossierDetail,
    DossierIn,
    DossierOut,
    EventIn,
    EventOut,
    RatingSummaryRow,
)
from thanthien.hub.db.models import SmsMessage
from thanthien.hub.roles import DOSSIER_OFFICERS, REPORT_READERS
from thanthien.hub.services import dossiers

router = APIRouter(tags=["dossiers"])


def _event(session: DbSession, event: object, created: bool = True) -> EventOut:
    out = EventOut.model_validate(event).model_copy(update={"created": created})
    if out.message_id is not None:
        msg = session.get(SmsMessage, out.message_id)
        out = out.model_copy(update={"message_status": msg.status if msg else None})
    return out


@router.get("/dossiers", response_model=list[DossierOut], dependencies=[allow(*DOSSIER_OFFICERS)])
def list_dossiers(
    session: DbSession,
    actor: CurrentUser,
    q: str = "",
    status: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[DossierOut]:
    return [
        DossierOut.model_validate(v)
        for v in dossiers.list_dossiers(
            session,
            viewer=actor,
            query=q[:100],
            status=status,
            limit=max(1, min(limit, 500)),
            offset=max(offset, 0),
        )
    ]


@router.post(
    "/dossiers",
    response_model=DossierOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(*DOSSIER_OFFICERS)],
    summary="Record a dossier; the 'received' notice follows",
)
def create_dossier(hub: Hub, session: DbSession, actor: CurrentUser, body: DossierIn) -> DossierOut:
    dossier = dossiers.create(
        session,
        actor=actor,
        code=body.code,
        procedure=body.procedure,
        citizen_name=body.citizen_name,
        phone=body.phone,
        counter=body.counter,
        officer_id=body.officer_id,
        due_at=body.due_at,
        source="api",
        now=hub.clock(),
        tz=ZoneInfo(hub.settings.hub.timezone),
        cfg=hub.settings.sms,
        notify=body.notify,
    )
    session.commit()
    return DossierOut.model_validate(dossiers.view(session, dossier, viewer=actor))


@router.get("/dossiers/{code}", response_model=DossierDetail, dependencies=[allow(*DOSSIER_OFFICERS)])
def get_dossier(session: DbSession, actor: CurrentUser, code: str) -> DossierDetail:
    dossier = dossiers.get(session, code, viewer=actor)
    v = DossierOut.model_validate(dossiers.view(session, dossier, viewer=actor))
    return DossierDetail(
        **v.model_dump(),
        events=[_event(session, e) for e in dossiers.events_of(session, dossier, viewer=actor)],
    )


@router.post(
    "/dossiers/{code}/events",
    response_model=EventOut,
    dependencies=[allow(*DOSSIER_OFFICERS)],
    summary="Record an event (supplement, result ready); the same event_id again records nothing new",
)
def add_event(
    hub: Hub, session: DbSession, actor: CurrentUser, code: str, body: EventIn, response: Response
) -> EventOut:
    outcome = dossiers.add_event(
        session,
        actor=actor,
        code=code,
        kind=body.kind,
        note=body.note,
        key=body.event_id,
        now=hub.clock(),
        tz=ZoneInfo(hub.settings.hub.timezone),
        cfg=hub.settings.sms,
    )
    session.commit()
    response.status_code = status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK
    return _event(session, outcome.event, outcome.created)


@router.get(
    "/dossier-ratings/summary",
    response_model=list[RatingSummaryRow],
    dependencies=[allow(*REPORT_READERS)],
    summary="Ratings by SMS reply per counter or officer (apart from the box presses)",
)
def rating_summary(
    hub: Hub,
    session: DbSession,
    actor: CurrentUser,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    by: Literal["counter", "officer"] = "counter",
) -> list[RatingSummaryRow]:
    end = end or hub.clock()
    start = start or end - timedelta(days=90)
    return [
        RatingSummaryRow.model_validate(r)
        for r in dossiers.rating_summary(session, viewer=actor, start=start, end=end, by=by)
    ]
