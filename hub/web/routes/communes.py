"""Communes and their onboarding (issue 20 item 4), for admins: a province admin lists every
commune, adds one and follows it into service (its admin, zones, counters, officers, nodes); a
commune's admin sees their own. Every rule is the communes, registry and users services'."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from thanthien.hub.roles import ADMINS
from thanthien.hub.services import communes, registry
from thanthien.hub.services.errors import ServiceError
from thanthien.hub.tenancy import is_province
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()
Admin = Annotated[UiUser, Depends(Require(*ADMINS))]
BACK = "/ui/communes"


@router.get("/communes")
def communes_page(request: Request, user: Admin) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        rows = communes.overview(session, viewer=user)
        if not is_province(user) and len(rows) == 1:
            return flash.redirect(f"{BACK}/{rows[0].commune.code}")
        return render(request, "communes.html", {"rows": rows, "province": is_province(user)}, user=user)


@router.post("/communes", dependencies=[Csrf])
def create_commune(request: Request, user: Admin, code: Annotated[str, Form()] = "",
                   name: Annotated[str, Form()] = "") -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            commune = communes.create_commune(session, actor=user, code=code, name=name, now=hub.clock())
            code, name = commune.code, commune.name
    except ServiceError as exc:
        return flash.refused(BACK, exc)
    return flash.redirect(f"{BACK}/{code}", message=f"Đã thêm {name}. Hãy làm tiếp các bước dưới đây.")


@router.get("/communes/{code}")
def commune_page(request: Request, user: Admin, code: str) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        state = communes.onboarding(session, viewer=user, code=code)
        commune_id = state.commune.id
        context = {
            "state": state, "province": is_province(user),
            "zones": [z for z in registry.list_zones(session, viewer=user, active=True)
                      if z.commune_id == commune_id],
            "counters": [c for c in registry.list_counters(session, viewer=user, active=True)
                         if c.commune_id == commune_id],
            "nodes": [n for n in registry.list_nodes(session, viewer=user, active=True)
                      if n.commune_id == commune_id],
        }
        return render(request, "commune.html", context, user=user)


@router.post("/communes/{code}/name", dependencies=[Csrf])
def rename_commune(request: Request, user: Admin, code: str, name: Annotated[str, Form()] = "") -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            communes.rename_commune(session, actor=user, code=code, name=name, now=hub.clock())
    except ServiceError as exc:
        return flash.refused(f"{BACK}/{code}", exc)
    return flash.redirect(f"{BACK}/{code}", message="Đã đổi tên xã/phường")


@router.post("/communes/{code}/zones", dependencies=[Csrf])
def add_zone(request: Request, user: Admin, code: str, zone_code: Annotated[str, Form()] = "",
             name: Annotated[str, Form()] = "", kind: Annotated[str, Form()] = "hamlet") -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            registry.create_zone(session, actor=user, code=zone_code, name=name, kind=kind, commune=code,
                                 now=hub.clock())
    except ServiceError as exc:
        return flash.refused(f"{BACK}/{code}#zones", exc)
    return flash.redirect(f"{BACK}/{code}#zones", message=f"Đã thêm khu vực phát {name.strip()}")


@router.post("/communes/{code}/counters", dependencies=[Csrf])
def add_counter(request: Request, user: Admin, code: str, counter_code: Annotated[str, Form()] = "",
                name: Annotated[str, Form()] = "") -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            registry.create_counter(session, actor=user, code=counter_code, name=name, commune=code,
                                    now=hub.clock())
    except ServiceError as exc:
        return flash.refused(f"{BACK}/{code}#counters", exc)
    return flash.redirect(f"{BACK}/{code}#counters", message=f"Đã thêm {name.strip()}")
