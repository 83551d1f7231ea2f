"""Sites, zones (bản / tổ dân phố) and counters (quầy): create, edit, retire, bring back.

A retired zone or counter keeps its history and reports and is not offered for new things;
a counter (or officer) that ratings name is retired, not deleted."""

from __future__ import annotations

from fastapi import APIRouter, status

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, RowId, allow
from thanthien.hub.api.retiring import add_retire_routes
from thanthien.hub.api.schemas import (
    CounterIn,
    CounterOut,
    CounterUpdate,
    SiteIn,
    SiteOut,
    ZoneIn,
    ZoneOut,
    ZoneUpdate,
)
from thanthien.hub.db.models import Counter, Site, Zone
from thanthien.hub.roles import ADMINS, EVERYONE, REGISTRY_EDITORS
from thanthien.hub.services import registry

router = APIRouter(tags=["registry"])


@router.get("/sites", response_model=list[SiteOut], dependencies=[allow(*EVERYONE)])
def list_sites(session: DbSession, actor: CurrentUser) -> list[SiteOut]:
    return [SiteOut.model_validate(s) for s in registry.list_sites(session, viewer=actor)]


@router.post("/sites", response_model=SiteOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*ADMINS)])
def create_site(hub: Hub, session: DbSession, actor: CurrentUser, body: SiteIn) -> SiteOut:
    site = registry.create_site(session, actor=actor, now=hub.clock(), code=body.code, name=body.name,
                                commune=body.commune)
    session.commit()
    return SiteOut.model_validate(site)


@router.delete("/sites/{site_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[allow(*ADMINS)])
def delete_site(hub: Hub, session: DbSession, actor: CurrentUser, site_id: RowId) -> None:
    registry.delete_row(session, actor=actor, now=hub.clock(), model=Site, ident=site_id)
    session.commit()


@router.get("/zones", response_model=list[ZoneOut], dependencies=[allow(*EVERYONE)],
            summary="Zones; active=true only those in service, false only the retired ones")
def list_zones(session: DbSession, actor: CurrentUser, active: bool | None = None) -> list[ZoneOut]:
    return [ZoneOut.model_validate(z) for z in registry.list_zones(session, viewer=actor, active=active)]


@router.post("/zones", response_model=ZoneOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*REGISTRY_EDITORS)])
def create_zone(hub: Hub, session: DbSession, actor: CurrentUser, body: ZoneIn) -> ZoneOut:
    zone = registry.create_zone(session, actor=actor, now=hub.clock(), code=body.code, name=body.name,
                                kind=body.kind, site=body.site, commune=body.commune)
    session.commit()
    return ZoneOut.model_validate(zone)


@router.patch("/zones/{zone_id}", response_model=ZoneOut, dependencies=[allow(*REGISTRY_EDITORS)])
def update_zone(hub: Hub, session: DbSession, actor: CurrentUser, zone_id: RowId,
                body: ZoneUpdate) -> ZoneOut:
    zone = registry.update_zone(session, actor=actor, now=hub.clock(), zone_id=zone_id, name=body.name,
                                kind=body.kind)
    session.commit()
    return ZoneOut.model_validate(zone)


add_retire_routes(router, path="/zones", model=Zone, out=ZoneOut, permission=REGISTRY_EDITORS,
                  summary="Retire a zone (refused while a speaker in service serves it)")


@router.delete("/zones/{zone_id}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[allow(*REGISTRY_EDITORS)])
def delete_zone(hub: Hub, session: DbSession, actor: CurrentUser, zone_id: RowId) -> None:
    registry.delete_row(session, actor=actor, now=hub.clock(), model=Zone, ident=zone_id)
    session.commit()


@router.get("/counters", response_model=list[CounterOut], dependencies=[allow(*EVERYONE)],
            summary="Counters; active=true only those in service, false only the retired ones")
def list_counters(session: DbSession, actor: CurrentUser, active: bool | None = None) -> list[CounterOut]:
    counters = registry.list_counters(session, viewer=actor, active=active)
    return [CounterOut.model_validate(c) for c in counters]


@router.post("/counters", response_model=CounterOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*REGISTRY_EDITORS)])
def create_counter(hub: Hub, session: DbSession, actor: CurrentUser, body: CounterIn) -> CounterOut:
    counter = registry.create_counter(session, actor=actor, now=hub.clock(), code=body.code, name=body.name,
                                      site=body.site, commune=body.commune)
    session.commit()
    return CounterOut.model_validate(counter)


@router.patch("/counters/{counter_id}", response_model=CounterOut, dependencies=[allow(*REGISTRY_EDITORS)])
def update_counter(hub: Hub, session: DbSession, actor: CurrentUser, counter_id: RowId,
                   body: CounterUpdate) -> CounterOut:
    counter = registry.update_counter(session, actor=actor, now=hub.clock(), counter_id=counter_id,
                                      name=body.name)
    session.commit()
    return CounterOut.model_validate(counter)


add_retire_routes(router, path="/counters", model=Counter, out=CounterOut, permission=REGISTRY_EDITORS,
                  summary="Retire a counter (refused while a rating box in service serves it)")


@router.delete("/counters/{counter_id}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[allow(*REGISTRY_EDITORS)],
               summary="Delete a counter no rating names (retire one that has ratings)")
def delete_counter(hub: Hub, session: DbSession, actor: CurrentUser, counter_id: RowId) -> None:
    registry.delete_row(session, actor=actor, now=hub.clock(), model=Counter, ident=counter_id)
    session.commit()
