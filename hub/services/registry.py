"""Sites, zones, counters, nodes and their devices, officers and the duty roster.

Each of these belongs to a commune (``hub/tenancy.py``): lists keep what the viewer reaches,
one row of another commune is not found, new rows belong to the actor's commune (or the one a
province user names), and a device serves only a counter or zone of its node's commune."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.edge.cameras.urls import parse_endpoint
from thanthien.hub.db.models import (
    Commune,
    Counter,
    Device,
    Node,
    Officer,
    Rating,
    RosterException,
    RosterPattern,
    Site,
    User,
    Zone,
)
from thanthien.hub.roles import DEVICE_STAFF, REGISTRY_EDITORS, SYSTEM, Actor, require
from thanthien.hub.services import audit, rating_counts, roster
from thanthien.hub.services.errors import Conflict, Invalid, NotFound
from thanthien.hub.settings import RegistrySection
from thanthien.hub.tenancy import (
    HOME,
    HOME_PLACEHOLDER,
    Tenant,
    commune_by_code,
    commune_for_new,
    require_reach,
    visible_clause,
)
from thanthien.protocol.ids import ID_PATTERN

log = logging.getLogger(__name__)

DEVICE_KINDS = ("rating_box", "speaker", "camera")
ZONE_KINDS = ("hamlet", "residential_group")


# -- lookups -------------------------------------------------------------------------------
def _by_code(session: Session, model: type[Any], code: str | None, viewer: Tenant | None = None) -> Any:
    """The row of ``code`` (``None`` for no code); one of a commune ``viewer`` does not reach is
    not found."""
    if code is None:
        return None
    row = session.scalar(select(model).where(model.code == code))
    if row is not None and viewer is not None:
        require_reach(viewer, commune_of(session, row), what=f"{model.__tablename__[:-1]} {code!r}")
    if row is None:
        raise NotFound(f"{model.__tablename__[:-1]} {code!r} not found")
    return row


def _get(session: Session, model: type[Any], ident: Any, viewer: Tenant | None = None) -> Any:
    row = session.get(model, ident)
    if row is not None and viewer is not None:
        require_reach(viewer, commune_of(session, row), what=f"{model.__tablename__[:-1]} {ident!r}")
    if row is None:
        raise NotFound(f"{model.__tablename__[:-1]} {ident!r} not found")
    return row


def commune_of(session: Session, row: Any) -> int | None:
    """The commune a registry row belongs to (a device: its node's)."""
    if isinstance(row, Device):
        node = session.get(Node, row.node_id)
        return node.commune_id if node is not None else None
    return row.commune_id  # type: ignore[no-any-return]


def _same_commune(session: Session, commune_id: int | None, rows: Iterable[Any]) -> None:
    """A device serves only counters and zones of its node's commune (and a placed node)."""
    for row in rows:
        if row is not None and row.commune_id != commune_id:
            raise Invalid(f"{_label(row)} thuộc xã/phường khác với nút; hãy chọn nơi của xã này.")


def _unique(session: Session, model: type[Any], code: str) -> None:
    if session.scalar(select(model).where(model.code == code)) is not None:
        raise Conflict(f"{model.__tablename__[:-1]} {code!r} already exists")


# -- sites, zones, counters ----------------------------------------------------------------
def list_sites(session: Session, *, viewer: Tenant) -> list[Site]:
    query = select(Site).where(visible_clause(viewer, Site.commune_id))
    return list(session.scalars(query.order_by(Site.code)))


def create_site(session: Session, *, actor: Actor, code: str, name: str, commune: str | None = None,
                now: datetime | None = None) -> Site:
    require(actor, REGISTRY_EDITORS)
    commune_id = commune_for_new(session, actor=actor, requested=commune)
    _unique(session, Site, code)
    site = Site(code=code, name=name, commune_id=commune_id)
    session.add(site)
    session.flush()
    _audit(session, actor, "create", site, at=now)
    return site


def list_zones(session: Session, *, viewer: Tenant, active: bool | None = None) -> list[Zone]:
    """Zones by code (``active``: only those in service, or only the retired ones)."""
    query = _in_service(select(Zone), Zone, active).where(visible_clause(viewer, Zone.commune_id))
    return list(session.scalars(query.order_by(Zone.code)))


def create_zone(session: Session, *, actor: Actor, code: str, name: str, kind: str = "hamlet",
                site: str | None = None, commune: str | None = None, now: datetime | None = None) -> Zone:
    require(actor, REGISTRY_EDITORS)
    if kind not in ZONE_KINDS:
        raise Invalid(f"Loại khu vực {kind!r} không có (bản hoặc tổ dân phố).")
    code, name = _valid_code(code), _name(name)
    commune_id = commune_for_new(session, actor=actor, requested=commune)
    _unique(session, Zone, code)
    zone = Zone(code=code, name=name, kind=kind, site_id=_site_id(session, site, actor),
                commune_id=commune_id)
    session.add(zone)
    session.flush()
    _audit(session, actor, "create", zone, at=now, site=site)
    return zone


def update_zone(session: Session, *, actor: Actor, zone_id: int, name: str | None = None,
                kind: str | None = None, now: datetime | None = None) -> Zone:
    require(actor, REGISTRY_EDITORS)
    zone = _get(session, Zone, zone_id, actor)
    if kind is not None and kind not in ZONE_KINDS:
        raise Invalid(f"Loại khu vực {kind!r} không có (bản hoặc tổ dân phố).")
    values: dict[str, Any] = {} if name is None else {"name": _name(name)}
    if kind is not None:
        values["kind"] = kind
    return _edit(session, actor, zone, values, now)


def list_counters(session: Session, *, viewer: Tenant, active: bool | None = None) -> list[Counter]:
    """Counters by code (``active``: only those in service, or only the retired ones)."""
    query = _in_service(select(Counter), Counter, active).where(visible_clause(viewer, Counter.commune_id))
    return list(session.scalars(query.order_by(Counter.code)))


def update_counter(session: Session, *, actor: Actor, counter_id: int, name: str | None = None,
                   now: datetime | None = None) -> Counter:
    require(actor, REGISTRY_EDITORS)
    counter = _get(session, Counter, counter_id, actor)
    return _edit(session, actor, counter, {"name": _name(name)} if name is not None else {}, now)


def create_counter(session: Session, *, actor: Actor, code: str, name: str, site: str | None = None,
                   commune: str | None = None, now: datetime | None = None) -> Counter:
    require(actor, REGISTRY_EDITORS)
    code, name = _valid_code(code), _name(name)
    commune_id = commune_for_new(session, actor=actor, requested=commune)
    _unique(session, Counter, code)
    counter = Counter(code=code, name=name, site_id=_site_id(session, site, actor), commune_id=commune_id)
    session.add(counter)
    session.flush()
    _audit(session, actor, "create", counter, at=now, site=site)
    return counter


def delete_row(session: Session, *, actor: Actor, model: type[Any], ident: Any,
               now: datetime | None = None) -> None:
    require(actor, DEVICE_STAFF if model in (Node, Device) else REGISTRY_EDITORS)
    row = _get(session, model, ident, actor)
    if isinstance(row, Officer | Counter):
        named = Rating.officer_id == row.id if isinstance(row, Officer) else Rating.counter_code == row.code
        if session.scalar(select(Rating.id).where(named).limit(1)) is not None:
            raise Conflict(f"{_label(row)} đã có đánh giá được lưu; hãy ngừng sử dụng thay vì xóa, "
                           "để báo cáo vẫn giữ tên.")
    _audit(session, actor, "delete", row, at=now)
    if isinstance(row, Officer):  # their ratings fall to nobody (ON DELETE SET NULL): so do the counts
        rating_counts.forget_officer(session, officer_id=row.id)
    session.delete(row)
    session.flush()


# -- the audit trail of registry changes ----------------------------------------------------
_AREAS: dict[type[Any], str] = {Site: "site", Zone: "zone", Counter: "counter", Node: "node",
                                Device: "device", Officer: "officer"}


def _audit(session: Session, actor: Actor, verb: str, row: Any, *, at: datetime | None,
           **details: Any) -> None:
    """``<area>.<verb>`` of a registry row, named by its code (a device by node/code)."""
    area = _AREAS[type(row)]
    if isinstance(row, Node):
        subject, values = row.id, {"name": row.name}
    elif isinstance(row, Device):
        subject, values = f"{row.node_id}/{row.code}", {"kind": row.kind, "name": row.name}
    elif isinstance(row, Officer):
        subject, values = row.code, {"full_name": row.full_name, "title": row.title}
    else:
        subject, values = row.code, {"name": row.name}
        if isinstance(row, Zone):
            values["kind"] = row.kind
    audit.record(session, actor=actor, action=f"{area}.{verb}", subject=f"{area}:{subject}", at=at,
                 details={**values, **details}, commune_id=commune_of(session, row))


def _declared(row: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Set ``values`` on a row; what changed (``audit.changes``), everything for a new row."""
    before = {k: getattr(row, k) for k in values} if row.id is not None else {}
    for key, value in values.items():
        setattr(row, key, value)
    return audit.changes(before, values)


def _site_id(session: Session, code: str | None, viewer: Tenant | None = None) -> int | None:
    site = _by_code(session, Site, code, viewer)
    return site.id if site else None


# -- nodes and devices ---------------------------------------------------------------------
def list_nodes(session: Session, *, viewer: Tenant, registered: bool | None = None,
               active: bool | None = None) -> list[Node]:
    """Nodes by id (``active``: only those in service, or only the retired ones); a node not yet
    placed in a commune only to province staff."""
    query = (_in_service(select(Node), Node, active).where(visible_clause(viewer, Node.commune_id))
             .order_by(Node.id))
    if registered is not None:
        query = query.where(Node.registered == registered)
    return list(session.scalars(query))


def get_node(session: Session, *, node_id: str, viewer: Tenant | None = None) -> Node:
    """The node; ``viewer``: one of a commune they do not reach (or not yet placed, to a commune
    user) is not found."""
    return _get(session, Node, node_id, viewer)


def register_node(session: Session, *, actor: Actor, node_id: str, name: str = "",
                  site: str | None = None, commune: str | None = None, now: datetime | None = None) -> Node:
    """Declare a node; one that was seen unregistered becomes registered (and is placed in the
    actor's commune, or the one a province user names)."""
    require(actor, DEVICE_STAFF)
    existing = session.get(Node, node_id)
    if existing is not None and existing.commune_id is not None:
        require_reach(actor, existing.commune_id, what=f"Nút {node_id}")
    placed = existing.commune_id if existing is not None else None
    commune_id = placed if placed is not None and not commune else \
        commune_for_new(session, actor=actor, requested=commune)
    node, changed = _register_node(session, node_id=node_id, name=name, site=site, commune_id=commune_id,
                                   viewer=actor)
    if changed:
        audit.record(session, actor=actor, action="node.register", subject=f"node:{node_id}", at=now,
                     details=changed, commune_id=node.commune_id)
    return node


def _register_node(session: Session, *, node_id: str, name: str, site: str | None, commune_id: int,
                   viewer: Tenant | None = None) -> tuple[Node, dict[str, Any]]:
    node = session.get(Node, node_id)
    before: dict[str, Any] = {}
    if node is None:
        node = Node(id=node_id, name=name, registered=True, state="unknown", session=0, last_seq=0,
                    capabilities=[], agent_version="", state_reason="", commune_id=commune_id)
        session.add(node)
    else:
        before = {"registered": node.registered, "name": node.name, "site": _site_code(session, node.site_id),
                  "commune": _commune_code(session, node.commune_id)}
    node.registered = True
    node.name = name or node.name
    node.commune_id = commune_id
    if site is not None:
        node.site_id = _site_id(session, site, viewer)
    session.flush()
    after = {"registered": True, "name": node.name, "site": _site_code(session, node.site_id),
             "commune": _commune_code(session, node.commune_id)}
    return node, audit.changes(before, after)


def _commune_code(session: Session, commune_id: int | None) -> str | None:
    commune = session.get(Commune, commune_id) if commune_id is not None else None
    return commune.code if commune else None


def _site_code(session: Session, site_id: int | None) -> str | None:
    site = session.get(Site, site_id) if site_id is not None else None
    return site.code if site else None


def update_node(session: Session, *, actor: Actor, node_id: str, name: str | None = None,
                site: str | None = None, registered: bool | None = None, now: datetime | None = None) -> Node:
    require(actor, DEVICE_STAFF)
    node = get_node(session, node_id=node_id, viewer=actor)
    before = {"name": node.name, "site": _site_code(session, node.site_id), "registered": node.registered}
    if name is not None:
        node.name = name
    if site is not None:
        node.site_id = _site_id(session, site, actor)
    if registered is not None:
        node.registered = registered
    session.flush()
    changed = audit.changes(before, {"name": node.name, "site": _site_code(session, node.site_id),
                                     "registered": node.registered})
    if changed:
        audit.record(session, actor=actor, action="node.update", subject=f"node:{node_id}", at=now,
                     details=changed, commune_id=node.commune_id)
    return node


def node_seen(session: Session, *, node_id: str, now: datetime) -> tuple[Node, bool]:
    """The node a message came from; an unknown one is recorded as unregistered.

    Returns the node and whether it was new (so the caller can raise the alarm)."""
    node = node_row(session, node_id=node_id)
    if node is not None:
        if node.first_seen_at is None:
            node.first_seen_at = now
        return node, False
    node = Node(id=node_id, name="", registered=False, state="unknown", state_reason="", session=0,
                last_seq=0, capabilities=[], agent_version="", first_seen_at=now)
    session.add(node)
    batch: dict[str, Node] | None = session.info.get(_NODES)
    if batch is None:
        session.flush()
    else:
        batch[node_id] = node  # an ingest batch inserts it with its other node writes, at its end
    log.warning("node %s is not registered; listed as unregistered", node_id)
    return node, True


_NODES = "thanthien.batch_node_rows"


def read_nodes(session: Session, *, node_ids: Iterable[str], lock: bool = False) -> dict[str, Node]:
    """The rows of these nodes, in one query, kept for the session (an ingest batch): then
    :func:`node_row` and :func:`node_seen` find them without another query, and a node seen for
    the first time is inserted when the session flushes, not at once. ``lock``: ``SELECT … FOR
    UPDATE`` in node id order (PostgreSQL; SQLite's writer holds the database anyway), so two
    ingest workers that both lock take their node rows in the same order."""
    ids = sorted(set(node_ids))
    query = select(Node).where(Node.id.in_(ids)).order_by(Node.id)
    if lock:
        query = query.with_for_update()
    rows = {node.id: node for node in session.scalars(query)} if ids else {}
    session.info.setdefault(_NODES, {}).update(rows)
    return rows


def node_row(session: Session, *, node_id: str) -> Node | None:
    """The node's row: from :func:`read_nodes` (or seen new in this batch), else read."""
    batch: dict[str, Node] | None = session.info.get(_NODES)
    node = batch.get(node_id) if batch is not None else None
    return node if node is not None else session.get(Node, node_id)


BATCH_NODES = "thanthien.batch_nodes"
"""``session.info`` key: the nodes of the ingest batch this session stores (set by the ingest
worker), so :func:`declared_devices` reads all of them at its first call."""
_DECLARED = "thanthien.declared_devices"


def declared_devices(session: Session, *, node_ids: Iterable[str],
                     kind: str) -> dict[str, dict[str, str | None]]:
    """What the registry places on each of these nodes: registered node -> its devices of
    ``kind`` (device code -> the code of the counter it serves, ``None`` if none). A registered
    node without such a device maps to ``{}``; a node that is not registered (or not known at
    all) is left out, since the registry says nothing about it.

    One query. In an ingest batch (``session.info[BATCH_NODES]``) that query reads every device
    of every node of the batch and the session keeps the answer, so the many runs of one batch
    (ratings between telemetry, camera reports) cost one query together."""
    wanted = set(node_ids)
    batch = session.info.get(BATCH_NODES)
    cache: dict[str, dict[str, dict[str, str | None]] | None] = \
        session.info.setdefault(_DECLARED, {}) if batch is not None else {}
    missing = wanted - cache.keys()
    if missing:
        if batch is not None:
            missing |= set(batch) - cache.keys()
        rows = session.execute(
            select(Node.id, Device.kind, Device.code, Counter.code)
            .select_from(Node)
            .outerjoin(Device, (Device.node_id == Node.id) & Device.retired_at.is_(None))
            .outerjoin(Counter, Counter.id == Device.counter_id)
            .where(Node.id.in_(sorted(missing)), Node.registered.is_(True))
        ).all()
        cache.update(dict.fromkeys(missing))  # not registered, unless a row says otherwise
        for node_id, device_kind, code, counter in rows:
            kinds = cache.get(node_id) or {}
            cache[node_id] = kinds
            if code is not None:
                kinds.setdefault(device_kind, {})[code] = counter
    return {n: dict(kinds.get(kind, {})) for n in wanted if (kinds := cache[n]) is not None}


def list_devices(session: Session, *, viewer: Tenant, node_id: str | None = None,
                 active: bool | None = None) -> list[Device]:
    query = (_in_service(select(Device), Device, active).join(Node, Node.id == Device.node_id)
             .where(visible_clause(viewer, Node.commune_id)).order_by(Device.node_id, Device.code))
    if node_id is not None:
        query = query.where(Device.node_id == node_id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class CameraAccess:
    """What a form or request says of a camera's addresses and account. An address ``None`` is
    kept, ``""`` cleared; the account is replaced only when a username or a password is given
    (a password alone keeps the username), or cleared. An account written in an address moves
    out of it, as the edge does. Neither is ever shown back, logged or audited."""

    rtsp_url: str | None = None
    snapshot_url: str | None = None
    username: str | None = None
    password: str | None = None
    clear_credentials: bool = False


URL_LABELS = {"rtsp_url": "Địa chỉ RTSP", "snapshot_url": "Địa chỉ ảnh chụp (snapshot)"}


def _camera(device: Device, access: CameraAccess) -> dict[str, Any]:
    """Set a camera's addresses and account; what changed (for the account only its fate)."""
    changed: dict[str, Any] = {}
    inline = None
    for field, value, schemes in (("rtsp_url", access.rtsp_url, ("rtsp",)),
                                  ("snapshot_url", access.snapshot_url, ("http",))):
        if value is None:
            continue
        clean = None
        if value.strip():
            try:
                endpoint = parse_endpoint(value.strip(), schemes)
            except ValueError as exc:  # the message never repeats the address
                raise Invalid(f"{URL_LABELS[field]} không hợp lệ: {exc}.") from None
            clean, inline = endpoint.url, inline or endpoint.credentials
            if len(clean) > 500:
                raise Invalid(f"{URL_LABELS[field]} dài quá 500 ký tự.")
        if getattr(device, field) != clean:
            changed[field] = {"from": getattr(device, field), "to": clean}
            setattr(device, field, clean)
    had = device.camera_username is not None
    username, password = access.username or None, access.password or None
    if access.clear_credentials:
        account: tuple[str, str] | None = None
    elif username is not None:
        account = (username, password or "")
    elif password is not None:
        user = inline.username if inline is not None else device.camera_username
        if user is None:
            raise Invalid("Nhập tên đăng nhập của camera cùng mật khẩu.")
        account = (user, password)
    elif inline is not None:
        account = (inline.username, inline.password)
    else:
        return changed
    if account is not None and (len(account[0]) > 128 or len(account[1]) > 256):
        raise Invalid("Tên đăng nhập (tối đa 128 ký tự) hoặc mật khẩu camera (tối đa 256) quá dài.")
    if account is None and not had:
        return changed
    device.camera_username, device.camera_password = account if account else (None, None)
    changed["credentials"] = "cleared" if account is None else "replaced" if had else "set"
    return changed


def upsert_device(session: Session, *, actor: Actor, node_id: str, code: str, kind: str, name: str = "",
                  counter: str | None = None, zone: str | None = None, camera: CameraAccess | None = None,
                  now: datetime | None = None) -> Device:
    """Create or update a device of a node (audited when something changed)."""
    require(actor, DEVICE_STAFF)
    device, verb, changed = _upsert_device(session, node_id=node_id, code=code, kind=kind, name=name,
                                           counter=counter, zone=zone, camera=camera, viewer=actor)
    if changed:
        audit.record(session, actor=actor, action=f"device.{verb}", subject=f"device:{node_id}/{code}",
                     at=now, details=changed, commune_id=commune_of(session, device))
    return device


def _upsert_device(session: Session, *, node_id: str, code: str, kind: str, name: str,
                   counter: str | None, zone: str | None, camera: CameraAccess | None = None,
                   viewer: Tenant | None = None) -> tuple[Device, str, dict[str, Any]]:
    if kind not in DEVICE_KINDS:
        raise Invalid(f"unknown device kind {kind!r}")
    if kind == "rating_box" and counter is None:
        raise Invalid("a rating box needs its counter")
    _valid_code(code)
    node = get_node(session, node_id=node_id, viewer=viewer)
    device = session.scalar(select(Device).where(Device.node_id == node_id, Device.code == code))
    before: dict[str, Any] = {}
    if device is None:
        device = Device(node_id=node_id, code=code, kind=kind)
        session.add(device)
    else:
        before = {"kind": device.kind, "name": device.name,
                  "counter": _code(session, Counter, device.counter_id),
                  "zone": _code(session, Zone, device.zone_id)}
    device.kind = kind
    device.name = name
    counter_row = _by_code(session, Counter, counter, viewer)
    zone_row = _by_code(session, Zone, zone, viewer)
    _same_commune(session, node.commune_id, (counter_row, zone_row))
    for target, row in (("counter", counter_row), ("zone", zone_row)):
        if row is not None and row.retired_at is not None and before.get(target) != row.code:
            raise Invalid(f"{_label(row)} đã ngừng sử dụng; hãy chọn chỗ khác.")
    device.counter_id = counter_row.id if counter_row else None
    device.zone_id = zone_row.id if zone_row else None
    if camera is not None and kind != "camera" and (camera.rtsp_url or camera.snapshot_url or camera.username
                                                    or camera.password):
        raise Invalid("Chỉ camera mới có địa chỉ RTSP, ảnh chụp và tài khoản.")
    access = _camera(device, camera) if camera is not None else {}
    session.flush()
    changed = audit.changes(before, {"kind": kind, "name": name, "counter": counter, "zone": zone})
    return device, "update" if before else "create", {**changed, **access}


def _code(session: Session, model: type[Any], ident: int | None) -> str | None:
    row = session.get(model, ident) if ident is not None else None
    return row.code if row else None


def ensure_commune(session: Session, *, site_name: str, declared: bool = False,
                   now: datetime | None = None) -> None:
    """The ``home`` commune migration 0018 makes, while it has its placeholder name: a hub whose
    config ``declared`` its communes drops it if nothing belongs to it; any other hub (one
    installed for one town) names it after ``[hub] site_name``. A hub left with no commune gets
    ``home`` again."""
    home = session.scalar(select(Commune).where(Commune.code == HOME))
    if home is not None and home.name == HOME_PLACEHOLDER:
        if declared and not _in_use(session, home.id):
            session.delete(home)
            session.flush()
        elif site_name != HOME_PLACEHOLDER:
            home.name = site_name
    elif home is None and session.scalar(select(Commune.id).limit(1)) is None:
        session.add(Commune(code=HOME, name=site_name, created_at=now))
        session.flush()


def _in_use(session: Session, commune_id: int) -> bool:
    """Whether any row belongs to the commune."""
    tables = [t for t in Commune.metadata.sorted_tables if "commune_id" in t.columns]
    return any(session.execute(select(t.c.commune_id).where(t.c.commune_id == commune_id).limit(1)).first()
               for t in tables)


def apply_declarations(session: Session, *, registry: RegistrySection, site_name: str = HOME_PLACEHOLDER,
                       now: datetime | None = None) -> None:
    """Create or update what the config file declares (nothing is deleted). What this changes
    is audited as the hub's own doing (``system``, ``"source": "config"``); a start-up that
    changes nothing writes nothing. Declared sites, zones, counters and nodes without a
    ``commune`` belong to the only commune there is (``home`` when none is declared)."""
    trail: list[tuple[str, str, dict[str, Any]]] = []
    for c in registry.communes:
        commune = session.scalar(select(Commune).where(Commune.code == c.code)) or Commune(code=c.code,
                                                                                         created_at=now)
        trail.append(("commune", c.code, _declared(commune, {"name": c.name})))
        session.add(commune)
    session.flush()
    ensure_commune(session, site_name=site_name, declared=bool(registry.communes), now=now)

    def commune_id(code: str | None) -> int:
        return commune_by_code(session, code).id if code else commune_for_new(session, actor=SYSTEM)

    for s in registry.sites:
        site = session.scalar(select(Site).where(Site.code == s.code)) or Site(code=s.code)
        trail.append(("site", s.code, _declared(site, {"name": s.name, "commune_id": commune_id(s.commune)})))
        session.add(site)
    session.flush()
    for z in registry.zones:
        zone = session.scalar(select(Zone).where(Zone.code == z.code)) or Zone(code=z.code)
        trail.append(("zone", z.code, _declared(zone, {"name": z.name, "kind": z.kind,
                                                       "site_id": _site_id(session, z.site),
                                                       "commune_id": commune_id(z.commune)})))
        session.add(zone)
    for c in registry.counters:
        counter = session.scalar(select(Counter).where(Counter.code == c.code)) or Counter(code=c.code)
        trail.append(("counter", c.code, _declared(counter, {"name": c.name,
                                                             "site_id": _site_id(session, c.site),
                                                             "commune_id": commune_id(c.commune)})))
        session.add(counter)
    session.flush()
    for n in registry.nodes:
        trail.append(("node", n.id, _register_node(session, node_id=n.id, name=n.name, site=n.site,
                                                   commune_id=commune_id(n.commune))[1]))
        for d in n.devices:
            _device, _verb, changed = _upsert_device(session, node_id=n.id, code=d.code, kind=d.kind,
                                                     name=d.name, counter=d.counter, zone=d.zone)
            trail.append(("device", f"{n.id}/{d.code}", changed))
    for area, subject, changed in trail:
        if changed:
            audit.record(session, actor=SYSTEM, action=f"{area}.declare", subject=f"{area}:{subject}",
                         at=now, details={**changed, "source": "config"})


# -- officers and roster -------------------------------------------------------------------
def list_officers(session: Session, *, viewer: Tenant, active: bool | None = None) -> list[Officer]:
    """Officers by code (``active``: only those in service, or only the retired ones)."""
    query = _in_service(select(Officer), Officer, active).where(visible_clause(viewer, Officer.commune_id))
    return list(session.scalars(query.order_by(Officer.code)))


def _login_of(session: Session, user_id: int, commune_id: int) -> None:
    """An officer's login must be a user of their commune (or a province user)."""
    user = session.get(User, user_id)
    if user is None or user.commune_id not in (None, commune_id):
        raise Invalid(f"Không có người dùng số {user_id}.")


def create_officer(session: Session, *, actor: Actor, code: str, full_name: str, title: str = "",
                   user_id: int | None = None, commune: str | None = None,
                   now: datetime | None = None) -> Officer:
    require(actor, REGISTRY_EDITORS)
    code, full_name = _valid_code(code), _name(full_name)
    commune_id = commune_for_new(session, actor=actor, requested=commune)
    _unique(session, Officer, code)
    if user_id is not None:
        _login_of(session, user_id, commune_id)
    officer = Officer(code=code, full_name=full_name, title=title, user_id=user_id, commune_id=commune_id)
    session.add(officer)
    session.flush()
    _audit(session, actor, "create", officer, at=now, user_id=user_id)
    return officer


def update_officer(session: Session, *, actor: Actor, officer_id: int, full_name: str | None = None,
                   title: str | None = None, user_id: int | Literal["keep"] | None = "keep",
                   now: datetime | None = None) -> Officer:
    """Rename an officer, change their title or the login linked to them (``None`` unlinks)."""
    require(actor, REGISTRY_EDITORS)
    officer = _get(session, Officer, officer_id, actor)
    values: dict[str, Any] = {}
    if full_name is not None:
        values["full_name"] = _name(full_name)
    if title is not None:
        values["title"] = title.strip()
    if user_id != "keep":
        if user_id is not None:
            _login_of(session, user_id, officer.commune_id)
        values["user_id"] = user_id
    return _edit(session, actor, officer, values, now)


# -- the duty roster (services/roster.py) -----------------------------------------------------
def list_roster(session: Session, *, viewer: Tenant, counter: str | None = None,
                start: datetime | None = None, end: datetime | None = None) -> list[RosterException]:
    """The one-off days (``extra`` exceptions: the roster's shifts before the weekly pattern)."""
    return roster.list_exceptions(session, viewer=viewer, counter=counter, kind="extra", start=start, end=end)


def add_shift(session: Session, *, actor: Actor, officer_id: int, counter: str, starts_at: datetime,
              ends_at: datetime, now: datetime | None = None) -> RosterException:
    """Put an officer on duty at a counter for [starts_at, ends_at) (a one-off day); ratings
    already stored in that window are attributed to them."""
    change = roster.new_exception(session, actor=actor, kind="extra", officer_id=officer_id, counter=counter,
                                  starts_at=starts_at, ends_at=ends_at)
    return roster.apply(session, change, actor=actor, now=now).exceptions[0]


def remove_shift(session: Session, *, actor: Actor, entry_id: int, now: datetime | None = None) -> None:
    roster.apply(session, roster.drop_exception(session, actor=actor, exception_id=entry_id, kind="extra"),
                 actor=actor, now=now)


def officers_on_duty(session: Session, *, presses: Iterable[tuple[str, datetime]]) -> list[int | None]:
    """The officer on duty for each (counter code, press time), in order; ``None`` if nobody.
    Weekly pattern and exceptions, two queries for the whole batch (``roster.officers_on_duty``)."""
    return roster.officers_on_duty(session, presses=list(presses))


# -- retiring: kept with its history, no longer offered for new things --------------------------
Row = TypeVar("Row", Zone, Counter, Officer, Device)
RETIRABLE: dict[str, type[Any]] = {"zone": Zone, "counter": Counter, "officer": Officer, "device": Device}


def _in_service(query: Any, model: type[Any], active: bool | None) -> Any:
    if active is None:
        return query
    return query.where(model.retired_at.is_(None) if active else model.retired_at.is_not(None))


def _valid_code(code: str) -> str:
    """A code as topics and broker names take it (``protocol.ids``), the same for every caller."""
    code = code.strip()
    if not re.fullmatch(ID_PATTERN, code):
        raise Invalid("Mã chỉ gồm chữ thường không dấu, chữ số và dấu gạch ngang, bắt đầu bằng chữ hoặc số "
                      "(tối đa 63 ký tự).")
    return code


def _name(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 200:
        raise Invalid("Tên phải có từ 1 đến 200 ký tự.")
    return value


def _edit(session: Session, actor: Actor, row: Row, values: dict[str, Any], now: datetime | None) -> Row:
    """Set ``values``; ``<area>.update`` with what changed (nothing when nothing did)."""
    changed = _declared(row, values)
    session.flush()
    if changed:
        area = _AREAS[type(row)]
        subject = f"{row.node_id}/{row.code}" if isinstance(row, Device) else row.code
        audit.record(session, actor=actor, action=f"{area}.update", subject=f"{area}:{subject}", at=now,
                     details=changed, commune_id=commune_of(session, row))
    return row


def _label(row: Any) -> str:
    if isinstance(row, Zone):
        return f"Khu vực phát {row.name}"
    if isinstance(row, Counter):
        return roster.counter_label(row.name)
    if isinstance(row, Officer):
        return f"Cán bộ {row.full_name}"
    return f"Thiết bị {row.name or row.code} ({row.node_id}/{row.code})"


def _may_retire(session: Session, row: Any, now: datetime) -> None:
    """Refuse to retire what something in service still needs."""
    if isinstance(row, Zone | Counter):
        link = Device.zone_id if isinstance(row, Zone) else Device.counter_id
        devices = list(session.scalars(select(Device).where(link == row.id, Device.retired_at.is_(None))
                                       .order_by(Device.node_id, Device.code)))
        if devices:
            what = "cụm loa" if isinstance(row, Zone) else "hộp đánh giá"
            names = ", ".join(f"{d.node_id}/{d.code}" for d in devices)
            other = "khu vực" if isinstance(row, Zone) else "quầy"
            raise Conflict(f"{_label(row)} còn {len(devices)} {what} đang dùng ({names}). Hãy chuyển "
                           f"sang {other} khác hoặc ngừng dùng trước.")
    if isinstance(row, Officer):
        rows = session.execute(select(RosterPattern.valid_until, RosterPattern.timezone).where(
            RosterPattern.officer_id == row.id)).all()
        patterns = sum(1 for until, tz in rows
                       if until is None or until >= now.astimezone(ZoneInfo(tz)).date())
        later = session.scalar(select(func.count()).select_from(RosterException).where(
            RosterException.officer_id == row.id, RosterException.kind != "leave",
            RosterException.ends_at > now))
        if patterns or later:
            raise Conflict(f"{_label(row)} vẫn còn trong lịch trực ({patterns + later} ca từ hôm nay). "
                           "Hãy kết thúc các ca đó trên trang Lịch trực trước.")


def retire(session: Session, *, actor: Actor, model: type[Any], ident: Any,
           now: datetime | None = None) -> Any:
    """Retire a zone, counter, officer or device: it keeps its history and its reports, and is no
    longer offered for new things (``retired_at``)."""
    require(actor, DEVICE_STAFF if model is Device else REGISTRY_EDITORS)
    row = _get(session, model, ident, actor)
    if row.retired_at is not None:
        raise Conflict(f"{_label(row)} đã ngừng sử dụng từ trước.")
    at = now or datetime.now(UTC)
    _may_retire(session, row, at)
    row.retired_at = at
    session.flush()
    _audit(session, actor, "retire", row, at=now)
    return row


def restore(session: Session, *, actor: Actor, model: type[Any], ident: Any,
            now: datetime | None = None) -> Any:
    """Bring a retired zone, counter, officer or device back into service."""
    require(actor, DEVICE_STAFF if model is Device else REGISTRY_EDITORS)
    row = _get(session, model, ident, actor)
    if row.retired_at is None:
        raise Conflict(f"{_label(row)} đang được sử dụng.")
    if isinstance(row, Device):
        for link, target in ((row.counter_id, Counter), (row.zone_id, Zone)):
            used = session.get(target, link) if link is not None else None
            if used is not None and used.retired_at is not None:
                raise Invalid(f"{_label(used)} đã ngừng sử dụng; hãy chọn chỗ khác cho thiết bị trước.")
    row.retired_at = None
    session.flush()
    _audit(session, actor, "restore", row, at=now)
    return row
