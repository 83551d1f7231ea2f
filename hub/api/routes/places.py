"""Sites, zones (bản / tổ dân phố) and counters (quầy)."""

from __future__ import annotations

from fastapi import APIRouter, status

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, RowId, allow
from thanthien.hub.api.schemas import CounterIn, CounterOut, SiteIn, SiteOut, ZoneIn, ZoneOut
from thanthien.hub.db.models import Counter, Site, Zone
from thanthien.hub.roles import ADMINS, EVERYONE
from thanthien.hub.services import registry

router = APIRouter(tags=["registry"])


@router.get("/sites", response_model=list[SiteOut], dependencies=[allow(*EVERYONE)])
def list_sites(session: DbSession) -> list[SiteOut]:
    return [SiteOut.model_validate(s) for s in registry.list_sites(session)]


@router.post("/sites", response_model=SiteOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*ADMINS)])
def create_site(hub: Hub, session: DbSession, actor: CurrentUser, body: SiteIn) -> SiteOut:
    site = registry.create_site(session, actor=actor, now=hub.clock(), code=body.code, name=body.name)
    session.commit()
    return SiteOut.model_validate(site)


@router.delete("/sites/{site_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[allow(*ADMINS)])
def delete_site(hub: Hub, session: DbSession, actor: CurrentUser, site_id: RowId) -> None:
    registry.delete_row(session, actor=actor, now=hub.clock(), model=Site, ident=site_id)
    session.commit()


@router.get("/zones", response_model=list[ZoneOut], dependencies=[allow(*EVERYONE)])
def list_zones(session: DbSession) -> list[ZoneOut]:
    return [ZoneOut.model_validate(z) for z in registry.list_zones(session)]


@router.post("/zones", response_model=ZoneOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*ADMINS)])
def create_zone(hub: Hub, session: DbSession, actor: CurrentUser, body: ZoneIn) -> ZoneOut:
    zone = registry.create_zone(session, actor=actor, now=hub.clock(), code=body.code, name=body.name,
                                kind=body.kind, site=body.site)
    session.commit()
    return ZoneOut.model_validate(zone)


@router.delete("/zones/{zone_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[allow(*ADMINS)])
def delete_zone(hub: Hub, session: DbSession, actor: CurrentUser, zone_id: RowId) -> None:
    registry.delete_row(session, actor=actor, now=hub.clock(), model=Zone, ident=zone_id)
    session.commit()


@router.get("/counters", response_model=list[CounterOut], dependencies=[allow(*EVERYONE)])
def list_counters(session: DbSession) -> list[CounterOut]:
    return [CounterOut.model_validate(c) for c in registry.list_counters(session)]


@router.post("/counters", response_model=CounterOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*ADMINS)])
def create_counter(hub: Hub, session: DbSession, actor: CurrentUser, body: CounterIn) -> CounterOut:
    counter = registry.create_counter(session, actor=actor, now=hub.clock(), code=body.code, name=body.name,
                                      site=body.site)
    session.commit()
    return CounterOut.model_validate(counter)


@router.delete("/counters/{counter_id}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[allow(*ADMINS)])
def delete_counter(hub: Hub, session: DbSession, actor: CurrentUser, counter_id: RowId) -> None:
    registry.delete_row(session, actor=actor, now=hub.clock(), model=Counter, ident=counter_id)
    session.commit()
