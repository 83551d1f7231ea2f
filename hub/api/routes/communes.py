"""Communes (xã / phường) the hub serves: listed to whoever reaches them, created and renamed by
province admins (issue 20)."""

from __future__ import annotations

from fastapi import APIRouter, status

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, allow
from thanthien.hub.api.schemas import CommuneIn, CommuneOut, CommuneUpdate
from thanthien.hub.roles import ADMINS, EVERYONE
from thanthien.hub.services import communes
from thanthien.hub.tenancy import list_communes

router = APIRouter(prefix="/communes", tags=["communes"])


@router.get("", response_model=list[CommuneOut], dependencies=[allow(*EVERYONE)],
            summary="The communes the user reaches (a commune user: their own)")
def get_communes(session: DbSession, actor: CurrentUser) -> list[CommuneOut]:
    return [CommuneOut.model_validate(c) for c in list_communes(session, actor=actor, active=None)]


@router.post("", response_model=CommuneOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*ADMINS)], summary="Add a commune (province admins)")
def create_commune(hub: Hub, session: DbSession, actor: CurrentUser, body: CommuneIn) -> CommuneOut:
    commune = communes.create_commune(session, actor=actor, code=body.code, name=body.name, now=hub.clock())
    session.commit()
    return CommuneOut.model_validate(commune)


@router.patch("/{code}", response_model=CommuneOut, dependencies=[allow(*ADMINS)],
              summary="Rename a commune (province admins)")
def rename_commune(hub: Hub, session: DbSession, actor: CurrentUser, code: str,
                   body: CommuneUpdate) -> CommuneOut:
    commune = communes.rename_commune(session, actor=actor, code=code, name=body.name, now=hub.clock())
    session.commit()
    return CommuneOut.model_validate(commune)
