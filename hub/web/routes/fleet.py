"""Putting a node into service from the browser (IT staff): add a node with its speaker or its
rating box and get its one-time enrollment code (text and QR code, shown on this one page and
never again), a new code for a node, retiring a node; and from the node page its commands (each
answer shown) and the values the hub holds for it (volume, warm-up). The rules are the
enrollment, node config and fleet command services'."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from thanthien.hub import tenancy
from thanthien.hub.roles import DEVICE_STAFF
from thanthien.hub.services import enrollment, fleet_commands, node_config, node_history, registry
from thanthien.hub.services.errors import ServiceError, http_status
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

ItUser = Annotated[UiUser, Depends(Require(*DEVICE_STAFF))]


def _form(request: Request, user: UiUser, *, form: dict[str, str] | None = None, message: str = "",
          status_code: int = 200) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        context = {"zones": registry.list_zones(session, viewer=user),
                   "communes": tenancy.list_communes(session, actor=user) if tenancy.is_province(user)
                   else [],
                   "counters": registry.list_counters(session, viewer=user),
                   "form": form or {}, "notice": (message, True) if message else None,
                   "ttl_h": hub.settings.enrollment.code_ttl_s / 3600}
        return render(request, "node_new.html", context, user=user, status_code=status_code)


def _code_page(request: Request, user: UiUser, issued: enrollment.IssuedCode, *, new: bool) -> Response:
    """The code, its command and QR code: rendered in the answer to the POST (never kept)."""
    hub = hub_of(request)
    command = enrollment.enroll_command(enrollment.hub_base(hub.settings.enrollment, str(request.base_url)),
                                        issued.code)
    with hub.db.new_session(write=False) as session:
        node = registry.get_node(session, node_id=issued.node_id, viewer=user)
        context = {"node": node, "code": issued.code, "expires_at": issued.expires_at, "command": command,
                   "qr": enrollment.qr_svg(command), "new": new}
        return render(request, "node_code.html", context, user=user)


@router.get("/enroll", response_class=HTMLResponse)
def new_node_page(request: Request, user: ItUser) -> Response:
    return _form(request, user)


@router.post("/enroll", dependencies=[Csrf], response_class=HTMLResponse)
def add_node(request: Request, user: ItUser, node_id: Annotated[str, Form()] = "",
             name: Annotated[str, Form()] = "", kind: Annotated[str, Form()] = "speaker",
             zone: Annotated[str, Form()] = "", counter: Annotated[str, Form()] = "",
             commune: Annotated[str, Form()] = "") -> Response:
    form = {"node_id": node_id.strip(), "name": name.strip(), "kind": kind, "zone": zone, "counter": counter,
            "commune": commune}
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            issued = enrollment.add_node(session, actor=user, node_id=node_id, name=name, now=hub.clock(),
                                         settings=hub.settings.enrollment,
                                         zone=zone or None if kind == "speaker" else None,
                                         counter=counter or None if kind == "rating_box" else None,
                                         commune=commune or None)
    except ServiceError as exc:
        return _form(request, user, form=form, message=str(exc), status_code=http_status(exc))
    return _code_page(request, user, issued, new=True)


@router.post("/nodes/{node_id}/enrollment", dependencies=[Csrf], response_class=HTMLResponse)
def new_code(request: Request, user: ItUser, node_id: str) -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            issued = enrollment.issue_code(session, actor=user, node_id=node_id, now=hub.clock(),
                                           settings=hub.settings.enrollment)
    except ServiceError as exc:
        return flash.refused(f"/ui/nodes/{node_id}", exc)
    return _code_page(request, user, issued, new=False)


@router.post("/nodes/{node_id}/retire", dependencies=[Csrf])
def retire(request: Request, user: ItUser, node_id: str) -> Response:
    hub = hub_of(request)
    back = f"/ui/nodes/{node_id}"
    try:
        with hub.db.session() as session:
            enrollment.retire_node(session, actor=user, node_id=node_id, now=hub.clock(), notify=hub.notify)
    except ServiceError as exc:
        return flash.refused(back, exc)
    return flash.redirect(back, message="Đã ngừng sử dụng thiết bị: tài khoản kết nối đã bị thu hồi")


@router.post("/nodes/{node_id}/commands", dependencies=[Csrf])
def command(request: Request, user: ItUser, node_id: str, name: Annotated[str, Form()] = "",
            volume: Annotated[str, Form()] = "", on: Annotated[str, Form()] = "",
            seconds: Annotated[str, Form()] = "") -> Response:
    """One command from the node page; its answer (or why there is none) comes back as the message."""
    hub = hub_of(request)
    back = f"/ui/nodes/{node_id}#commands"
    args = {k: v for k, v in (("volume", volume), ("on", on), ("seconds", seconds)) if v != ""}
    try:
        done = fleet_commands.send(hub, actor=user, node_id=node_id, name=name, args=args)
    except ServiceError as exc:
        return flash.refused(back, exc)
    text = f"{done.label}: {done.status_label}" + (f" — {done.summary}" if done.summary else "")
    return flash.redirect(back, message=text, error=done.status != "ok")


@router.post("/nodes/{node_id}/config", dependencies=[Csrf])
def config(request: Request, user: ItUser, node_id: str, volume: Annotated[str, Form()] = "",
           warmup_s: Annotated[str, Form()] = "") -> Response:
    hub = hub_of(request)
    back = f"/ui/nodes/{node_id}#config"
    try:
        speaker = node_config.SpeakerValues(volume=int(volume) if volume else None,
                                            warmup_s=float(warmup_s.replace(",", ".")) if warmup_s else None)
    except ValueError:
        return flash.redirect(back, message="Âm lượng là số nguyên 0–100, thời gian khởi động ampli là "
                                            "số giây 0–30.", error=True)
    try:
        with hub.db.session() as session:
            row = node_config.update(session, actor=user, node_id=node_id, now=hub.clock(),
                                     change=node_config.ConfigUpdate(speaker=speaker))
            version = row.version
    except ServiceError as exc:
        return flash.refused(back, exc)
    return flash.redirect(back, message=f"Đã lưu cấu hình (đang ở phiên bản {version}); thiết bị sẽ nhận "
                                        "phiên bản mới")


@router.get("/nodes/{node_id}/cameras/{camera}/thumbnail.jpg")
def thumbnail(request: Request, user: ItUser, node_id: str, camera: str) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        thumb = node_history.thumbnail(session, viewer=user, node_id=node_id, camera=camera)
    return Response(thumb.jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
