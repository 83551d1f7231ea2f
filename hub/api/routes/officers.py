"""Officers (cán bộ, công chức) and the duty roster (who staffs which counter when)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import AwareDatetime

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, RowId, allow
from thanthien.hub.api.schemas import OfficerIn, OfficerOut, ShiftIn, ShiftOut
from thanthien.hub.db.models import Officer
from thanthien.hub.roles import ADMINS, ROSTER_READERS
from thanthien.hub.services import registry

router = APIRouter(tags=["officers"])


@router.get("/officers", response_model=list[OfficerOut], dependencies=[allow(*ROSTER_READERS)])
def list_officers(session: DbSession) -> list[OfficerOut]:
    return [OfficerOut.model_validate(o) for o in registry.list_officers(session)]


@router.post("/officers", response_model=OfficerOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*ADMINS)])
def create_officer(hub: Hub, session: DbSession, actor: CurrentUser, body: OfficerIn) -> OfficerOut:
    officer = registry.create_officer(session, actor=actor, now=hub.clock(), code=body.code,
                                      full_name=body.full_name, title=body.title, user_id=body.user_id)
    session.commit()
    return OfficerOut.model_validate(officer)


@router.delete("/officers/{officer_id}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[allow(*ADMINS)])
def delete_officer(hub: Hub, session: DbSession, actor: CurrentUser, officer_id: RowId) -> None:
    registry.delete_row(session, actor=actor, now=hub.clock(), model=Officer, ident=officer_id)
    session.commit()


@router.get("/roster", response_model=list[ShiftOut], dependencies=[allow(*ROSTER_READERS)])
def list_roster(session: DbSession, counter: str | None = None, start: AwareDatetime | None = None,
                end: AwareDatetime | None = None) -> list[ShiftOut]:
    return [ShiftOut.model_validate(e) for e in registry.list_roster(session, counter=counter, start=start,
                                                                       end=end)]


@router.post("/roster", response_model=ShiftOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*ADMINS)], summary="Put an officer on duty; stored ratings follow")
def add_shift(hub: Hub, session: DbSession, actor: CurrentUser, body: ShiftIn) -> ShiftOut:
    entry = registry.add_shift(session, actor=actor, now=hub.clock(), officer_id=body.officer_id,
                               counter=body.counter, starts_at=body.starts_at, ends_at=body.ends_at)
    session.commit()
    return ShiftOut.model_validate(entry)


@router.delete("/roster/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[allow(*ADMINS)])
def remove_shift(hub: Hub, session: DbSession, actor: CurrentUser, entry_id: RowId) -> None:
    registry.remove_shift(session, actor=actor, now=hub.clock(), entry_id=entry_id)
    session.commit()
