"""The registry pages (Danh mục): zones (bản / tổ dân phố) with their speakers and counters
with their rating boxes, the devices of each node (a camera's account is set or replaced,
never shown), and officers. Create, edit, retire and bring back; the rules (who may, what a
retired thing still allows) are ``services/registry.py``'s, these handlers read the form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from thanthien.hub.api.deps import RowId
from thanthien.hub.db.models import Counter, Device, Officer, Zone
from thanthien.hub.roles import (
    ADMINS,
    BROADCAST_RULE_EDITORS,
    DEVICE_STAFF,
    REGISTRY_EDITORS,
    REGISTRY_READERS,
    ROSTER_READERS,
    may,
)
from thanthien.hub.services import registry, users, zone_rules
from thanthien.hub.services.errors import Invalid, ServiceError
from thanthien.hub.services.zone_rules import RuleSpec
from thanthien.hub.tenancy import list_communes
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

Reader = Annotated[UiUser, Depends(Require(*REGISTRY_READERS))]
Editor = Annotated[UiUser, Depends(Require(*REGISTRY_EDITORS))]
DeviceStaff = Annotated[UiUser, Depends(Require(*DEVICE_STAFF))]
RosterReader = Annotated[UiUser, Depends(Require(*ROSTER_READERS))]
Text = Annotated[str, Form()]

PLACES, DEVICES, OFFICERS = "/ui/registry/places", "/ui/registry/devices", "/ui/registry/officers"
TABS = ((PLACES, "Khu vực phát và quầy", REGISTRY_READERS), (DEVICES, "Thiết bị của các nút", DEVICE_STAFF),
        (OFFICERS, "Cán bộ", ROSTER_READERS), ("/ui/users", "Người dùng", ADMINS))
ZONE_KINDS = {"hamlet": "Bản", "residential_group": "Tổ dân phố"}
MODELS: dict[str, tuple[type[Any], str]] = {"zones": (Zone, PLACES), "counters": (Counter, PLACES),
                                            "officers": (Officer, OFFICERS), "devices": (Device, DEVICES)}


def _tabs(user: UiUser) -> list[tuple[str, str]]:
    return [(path, label) for path, label, roles in TABS if may(user, roles)]


def _page(request: Request, user: UiUser, name: str, build: Callable[[Session], dict[str, Any]]) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        context = {"tabs": _tabs(user), "zone_kinds": ZONE_KINDS, **build(session)}
        return render(request, name, context, user=user)


def _act(request: Request, back: str, done: Callable[[Session], str]) -> Response:
    """Run a service call in one transaction; back to the page with what it did or why not."""
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            message = done(session)
    except ServiceError as exc:
        return flash.refused(back, exc)
    return flash.redirect(back, message=message)


@router.get("/registry")
def registry_home(user: Reader) -> Response:
    return RedirectResponse(PLACES, status_code=303)


# -- zones and counters ----------------------------------------------------------------------
@router.get("/registry/places", response_class=HTMLResponse)
def places_page(request: Request, user: Reader) -> Response:
    def build(session: Session) -> dict[str, Any]:
        devices = registry.list_devices(session, viewer=user, active=True)
        rules = zone_rules.book(session)
        return {"zones": registry.list_zones(session, viewer=user),
                "counters": registry.list_counters(session, viewer=user),
                "zone_rules": {z.id: rules.for_zone(z.id) for z in registry.list_zones(session, viewer=user)},
                "commune_rule": rules.for_zone(None, commune_id=zone_rules.commune_of(session, user)),
                "speakers": _by(devices, "speaker", "zone_id"),
                "boxes": _by(devices, "rating_box", "counter_id"), "editor": may(user, REGISTRY_EDITORS)}
    return _page(request, user, "registry_places.html", build)


def _by(devices: list[Device], kind: str, link: str) -> dict[int | None, list[Device]]:
    out: dict[int | None, list[Device]] = {}
    for d in devices:
        if d.kind == kind:
            out.setdefault(getattr(d, link), []).append(d)
    return out


@router.post("/registry/zones", dependencies=[Csrf])
def create_zone(request: Request, user: Editor, code: Text = "", name: Text = "",
                kind: Text = "hamlet") -> Response:
    hub = hub_of(request)

    def done(session: Session) -> str:
        zone = registry.create_zone(session, actor=user, now=hub.clock(), code=code, name=name,
                                    kind=kind)
        return f"Đã thêm khu vực phát {zone.name}"
    return _act(request, PLACES, done)


@router.post("/registry/zones/{zone_id}", dependencies=[Csrf])
def update_zone(request: Request, user: Editor, zone_id: RowId, name: Text = "", kind: Text = "") -> Response:
    hub = hub_of(request)

    def done(session: Session) -> str:
        zone = registry.update_zone(session, actor=user, now=hub.clock(), zone_id=zone_id, name=name,
                                    kind=kind or None)
        return f"Đã lưu khu vực phát {zone.name}"
    return _act(request, PLACES, done)


@router.post("/registry/counters", dependencies=[Csrf])
def create_counter(request: Request, user: Editor, code: Text = "", name: Text = "") -> Response:
    hub = hub_of(request)

    def done(session: Session) -> str:
        counter = registry.create_counter(session, actor=user, now=hub.clock(), code=code,
                                          name=name)
        return f"Đã thêm quầy {counter.name}"
    return _act(request, PLACES, done)


@router.post("/registry/counters/{counter_id}", dependencies=[Csrf])
def update_counter(request: Request, user: Editor, counter_id: RowId, name: Text = "") -> Response:
    hub = hub_of(request)

    def done(session: Session) -> str:
        counter = registry.update_counter(session, actor=user, now=hub.clock(), counter_id=counter_id,
                                          name=name)
        return f"Đã lưu quầy {counter.name}"
    return _act(request, PLACES, done)


# -- retire and bring back (zones, counters, officers, devices) ------------------------------
RETIRED = {"zones": "Đã ngừng sử dụng khu vực phát", "counters": "Đã ngừng sử dụng quầy",
           "officers": "Đã ghi nhận cán bộ ngừng công tác:", "devices": "Đã ngừng sử dụng thiết bị"}
RESTORED = {"zones": "Đã dùng lại khu vực phát", "counters": "Đã dùng lại quầy",
            "officers": "Cán bộ công tác trở lại:", "devices": "Đã dùng lại thiết bị"}


def _name_of(row: Any) -> str:
    return str(row.full_name if isinstance(row, Officer) else row.name or row.code)


@router.post("/registry/{area}/{ident}/retire", dependencies=[Csrf])
def retire(request: Request, user: Reader, area: str, ident: int) -> Response:
    return _retire_or_restore(request, user, area, ident, registry.retire, RETIRED)


@router.post("/registry/{area}/{ident}/restore", dependencies=[Csrf])
def restore(request: Request, user: Reader, area: str, ident: int) -> Response:
    return _retire_or_restore(request, user, area, ident, registry.restore, RESTORED)


def _retire_or_restore(request: Request, user: UiUser, area: str, ident: int, action: Callable[..., Any],
                       said: dict[str, str]) -> Response:
    if area not in MODELS:
        raise Invalid(f"Không có danh mục {area!r}.")
    model, back = MODELS[area]
    hub = hub_of(request)

    def done(session: Session) -> str:
        row = action(session, actor=user, now=hub.clock(), model=model, ident=ident)
        return f"{said[area]} {_name_of(row)}"
    return _act(request, back, done)


# -- devices of each node --------------------------------------------------------------------
@router.get("/registry/devices", response_class=HTMLResponse)
def devices_page(request: Request, user: DeviceStaff, node: str = "") -> Response:
    def build(session: Session) -> dict[str, Any]:
        nodes = registry.list_nodes(session, viewer=user, registered=True)
        devices = registry.list_devices(session, viewer=user)
        by_node: dict[str, list[Device]] = {}
        for d in devices:
            by_node.setdefault(d.node_id, []).append(d)
        return {"nodes": [n for n in nodes if not node or n.id == node], "by_node": by_node, "node": node,
                "zones": registry.list_zones(session, viewer=user),
                "counters": registry.list_counters(session, viewer=user)}
    return _page(request, user, "registry_devices.html", build)


@router.post("/registry/devices", dependencies=[Csrf])
def save_device(request: Request, user: DeviceStaff, node_id: Text = "", code: Text = "", kind: Text = "",
                name: Text = "", counter: Text = "", zone: Text = "", rtsp_url: Text = "",
                snapshot_url: Text = "", camera_username: Text = "", camera_password: Text = "",
                clear_credentials: Text = "", back: Text = "") -> Response:
    """Add a device or save one (the same form); a camera's account fields are blank unless
    it is being set or replaced."""
    hub = hub_of(request)
    target = flash.safe_next(back, DEVICES)

    def done(session: Session) -> str:
        camera = registry.CameraAccess(rtsp_url=rtsp_url, snapshot_url=snapshot_url, username=camera_username,
                                       password=camera_password, clear_credentials=clear_credentials == "1") \
            if kind == "camera" else None
        device = registry.upsert_device(session, actor=user, now=hub.clock(), node_id=node_id.strip(),
                                        code=code, kind=kind, name=name.strip(),
                                        counter=counter or None, zone=zone or None, camera=camera)
        return f"Đã lưu thiết bị {device.name or device.code} của nút {device.node_id}"
    return _act(request, target, done)


# -- officers ----------------------------------------------------------------------------------
@router.get("/registry/officers", response_class=HTMLResponse)
def officers_page(request: Request, user: RosterReader) -> Response:
    def build(session: Session) -> dict[str, Any]:
        editor = may(user, REGISTRY_EDITORS)
        logins = users.list_users(session, viewer=user) if editor else []
        return {"officers": registry.list_officers(session, viewer=user), "editor": editor, "logins": logins,
                "login_names": {u.id: u.username for u in logins}}
    return _page(request, user, "registry_officers.html", build)


def _user_id(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise Invalid("Tài khoản đăng nhập không hợp lệ.")
    return int(value)


@router.post("/registry/officers", dependencies=[Csrf])
def create_officer(request: Request, user: Editor, code: Text = "", full_name: Text = "", title: Text = "",
                   user_id: Text = "") -> Response:
    hub = hub_of(request)

    def done(session: Session) -> str:
        officer = registry.create_officer(session, actor=user, now=hub.clock(), code=code,
                                          full_name=full_name, title=title.strip(),
                                          user_id=_user_id(user_id))
        return f"Đã thêm cán bộ {officer.full_name}"
    return _act(request, OFFICERS, done)


@router.post("/registry/officers/{officer_id}", dependencies=[Csrf])
def update_officer(request: Request, user: Editor, officer_id: RowId, full_name: Text = "", title: Text = "",
                   user_id: Text = "") -> Response:
    hub = hub_of(request)

    def done(session: Session) -> str:
        officer = registry.update_officer(session, actor=user, now=hub.clock(), officer_id=officer_id,
                                          full_name=full_name, title=title, user_id=_user_id(user_id))
        return f"Đã lưu cán bộ {officer.full_name}"
    return _act(request, OFFICERS, done)


# -- broadcast rules: volume by the hour, daily minutes, allowed slots --------------------------
RULES = "/ui/registry/rules"
RuleReader = Annotated[UiUser, Depends(Require(*REGISTRY_READERS))]
RuleEditor = Annotated[UiUser, Depends(Require(*BROADCAST_RULE_EDITORS))]


def _rule_path(zone: str | None, node: str | None) -> str:
    return f"{RULES}/zone/{zone}" if zone else f"{RULES}/node/{node}" if node else RULES


def _rules_page(request: Request, user: UiUser, *, zone: str | None = None,
                node: str | None = None) -> Response:
    commune = request.query_params.get("commune") or None

    def build(session: Session) -> dict[str, Any]:
        try:
            where = zone_rules.scope(session, viewer=user, zone=zone, node=node, commune=commune)
        except ServiceError as exc:
            raise HTTPException(404, str(exc)) from None
        rules = zone_rules.book(session)
        if node is not None:
            effective = rules.for_node(node)
        elif where.zone_id is not None:
            effective = rules.for_zone(where.zone_id)
        else:
            effective = rules.for_zone(None, commune_id=where.commune_id)
        own = zone_rules.get_rule(session, where)
        tz = ZoneInfo(hub_of(request).settings.hub.timezone)
        return {"where": where, "own": own, "effective": effective, "action": _rule_path(zone, node),
                "bands_text": zone_rules.bands_text, "slots_text": zone_rules.slots_form_text,
                "slots_read": lambda s: zone_rules.slots_text(s, tz), "part_labels": zone_rules.PART_LABELS,
                "editor": may(user, BROADCAST_RULE_EDITORS), "level": "node" if node else "zone" if zone else
                "commune", "commune": commune if not (zone or node) else None}
    return _page(request, user, "registry_rules.html", build)


@router.get(RULES.removeprefix("/ui"), response_class=HTMLResponse)
def commune_rules_page(request: Request, user: RuleReader) -> Response:
    if not request.query_params.get("commune"):
        with hub_of(request).db.new_session(write=False) as session:
            if zone_rules.commune_of(session, user) is None:  # a province user with several: pick one
                context = {"tabs": _tabs(user), "communes": list_communes(session, actor=user)}
                return render(request, "registry_rules_pick.html", context, user=user)
    return _rules_page(request, user)


@router.get(RULES.removeprefix("/ui") + "/zone/{code}", response_class=HTMLResponse)
def zone_rules_page(request: Request, user: RuleReader, code: str) -> Response:
    return _rules_page(request, user, zone=code)


@router.get(RULES.removeprefix("/ui") + "/node/{node_id}", response_class=HTMLResponse)
def speaker_rules_page(request: Request, user: RuleReader, node_id: str) -> Response:
    return _rules_page(request, user, node=node_id)


def _rule_of_form(form: Any) -> RuleSpec:
    """The posted form as a rule (each part set or inherited), or Invalid with what is wrong."""
    values: dict[str, Any] = {}
    if form.get("volume_mode") == "set":
        values["volume_profile"] = zone_rules.parse_bands(str(form.get("bands", "")))
    if form.get("minutes_mode") == "set":
        text = str(form.get("daily_minutes", "")).strip()
        if not text.isdigit():
            raise Invalid("Số phút mỗi ngày phải là số nguyên từ 0 đến 1440.")
        values["daily_minutes"] = int(text)
    if form.get("slots_mode") == "set":
        values["slots"] = zone_rules.parse_slots(str(form.get("slots", "")))
    try:
        return RuleSpec(**values)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        part = zone_rules.PART_LABELS.get(str(loc[0]) if loc else "", "quy định")
        raise Invalid(f"Thông tin chưa hợp lệ: {part}.") from None


async def _save_rule(request: Request, user: UiUser, *, zone: str | None = None,
                     node: str | None = None) -> Response:
    hub = hub_of(request)
    form = await request.form()
    back = _rule_path(zone, node)

    def done(session: Session) -> str:
        where = zone_rules.scope(session, viewer=user, zone=zone, node=node,
                                 commune=str(form.get("commune") or "") or None)
        change = zone_rules.set_rule(session, actor=user, where=where, spec=_rule_of_form(form),
                                     now=hub.clock(), tz=ZoneInfo(hub.settings.hub.timezone),
                                     cfg=hub.settings.broadcasts)
        message = f"Đã lưu quy định phát của {where.label}."
        if change.back_to_draft:
            names = "; ".join(f"#{i} {title}: {why}" for i, title, why in change.back_to_draft)
            message += (f" {len(change.back_to_draft)} bản tin đã phê duyệt không còn đúng quy định, "
                        f"đã về bản nháp ({names})")
        return message
    return _act(request, back, done)


@router.post(RULES.removeprefix("/ui"), dependencies=[Csrf])
async def save_commune_rules(request: Request, user: RuleEditor) -> Response:
    return await _save_rule(request, user)


@router.post(RULES.removeprefix("/ui") + "/zone/{code}", dependencies=[Csrf])
async def save_zone_rules(request: Request, user: RuleEditor, code: str) -> Response:
    return await _save_rule(request, user, zone=code)


@router.post(RULES.removeprefix("/ui") + "/node/{node_id}", dependencies=[Csrf])
async def save_speaker_rules(request: Request, user: RuleEditor, node_id: str) -> Response:
    return await _save_rule(request, user, node=node_id)
