"""Sites, zones, counters, nodes and their devices, officers and the duty roster."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Counter, Device, Node, Officer, Rating, RosterEntry, Site, User, Zone
from thanthien.hub.roles import SYSTEM, Actor
from thanthien.hub.services import audit, rating_counts
from thanthien.hub.services.errors import Conflict, Invalid, NotFound
from thanthien.hub.settings import RegistrySection

log = logging.getLogger(__name__)

DEVICE_KINDS = ("rating_box", "speaker", "camera")


# -- lookups -------------------------------------------------------------------------------
def _by_code(session: Session, model: type[Any], code: str | None) -> Any:
    if code is None:
        return None
    row = session.scalar(select(model).where(model.code == code))
    if row is None:
        raise NotFound(f"{model.__tablename__[:-1]} {code!r} not found")
    return row


def _get(session: Session, model: type[Any], ident: Any) -> Any:
    row = session.get(model, ident)
    if row is None:
        raise NotFound(f"{model.__tablename__[:-1]} {ident!r} not found")
    return row


def _unique(session: Session, model: type[Any], code: str) -> None:
    if session.scalar(select(model).where(model.code == code)) is not None:
        raise Conflict(f"{model.__tablename__[:-1]} {code!r} already exists")


# -- sites, zones, counters ----------------------------------------------------------------
def list_sites(session: Session) -> list[Site]:
    return list(session.scalars(select(Site).order_by(Site.code)))


def create_site(session: Session, *, actor: Actor, code: str, name: str, now: datetime | None = None) -> Site:
    _unique(session, Site, code)
    site = Site(code=code, name=name)
    session.add(site)
    session.flush()
    _audit(session, actor, "create", site, at=now)
    return site


def list_zones(session: Session) -> list[Zone]:
    return list(session.scalars(select(Zone).order_by(Zone.code)))


def create_zone(session: Session, *, actor: Actor, code: str, name: str, kind: str = "hamlet",
                site: str | None = None, now: datetime | None = None) -> Zone:
    _unique(session, Zone, code)
    zone = Zone(code=code, name=name, kind=kind, site_id=_site_id(session, site))
    session.add(zone)
    session.flush()
    _audit(session, actor, "create", zone, at=now, site=site)
    return zone


def list_counters(session: Session) -> list[Counter]:
    return list(session.scalars(select(Counter).order_by(Counter.code)))


def create_counter(session: Session, *, actor: Actor, code: str, name: str,
                   site: str | None = None, now: datetime | None = None) -> Counter:
    _unique(session, Counter, code)
    counter = Counter(code=code, name=name, site_id=_site_id(session, site))
    session.add(counter)
    session.flush()
    _audit(session, actor, "create", counter, at=now, site=site)
    return counter


def delete_row(session: Session, *, actor: Actor, model: type[Any], ident: Any,
               now: datetime | None = None) -> None:
    row = _get(session, model, ident)
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
                 details={**values, **details})


def _declared(row: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Set ``values`` on a row; what changed (``audit.changes``), everything for a new row."""
    before = {k: getattr(row, k) for k in values} if row.id is not None else {}
    for key, value in values.items():
        setattr(row, key, value)
    return audit.changes(before, values)


def _site_id(session: Session, code: str | None) -> int | None:
    site = _by_code(session, Site, code)
    return site.id if site else None


# -- nodes and devices ---------------------------------------------------------------------
def list_nodes(session: Session, *, registered: bool | None = None) -> list[Node]:
    query = select(Node).order_by(Node.id)
    if registered is not None:
        query = query.where(Node.registered == registered)
    return list(session.scalars(query))


def get_node(session: Session, *, node_id: str) -> Node:
    return _get(session, Node, node_id)


def register_node(session: Session, *, actor: Actor, node_id: str, name: str = "",
                  site: str | None = None, now: datetime | None = None) -> Node:
    """Declare a node; one that was seen unregistered becomes registered."""
    node, changed = _register_node(session, node_id=node_id, name=name, site=site)
    if changed:
        audit.record(session, actor=actor, action="node.register", subject=f"node:{node_id}", at=now,
                     details=changed)
    return node


def _register_node(session: Session, *, node_id: str, name: str,
                   site: str | None) -> tuple[Node, dict[str, Any]]:
    node = session.get(Node, node_id)
    before: dict[str, Any] = {}
    if node is None:
        node = Node(id=node_id, name=name, registered=True, state="unknown", session=0, last_seq=0,
                    capabilities=[], agent_version="", state_reason="")
        session.add(node)
    else:
        before = {"registered": node.registered, "name": node.name, "site": _site_code(session, node.site_id)}
    node.registered = True
    node.name = name or node.name
    if site is not None:
        node.site_id = _site_id(session, site)
    session.flush()
    after = {"registered": True, "name": node.name, "site": _site_code(session, node.site_id)}
    return node, audit.changes(before, after)


def _site_code(session: Session, site_id: int | None) -> str | None:
    site = session.get(Site, site_id) if site_id is not None else None
    return site.code if site else None


def update_node(session: Session, *, actor: Actor, node_id: str, name: str | None = None,
                site: str | None = None, registered: bool | None = None, now: datetime | None = None) -> Node:
    node = get_node(session, node_id=node_id)
    before = {"name": node.name, "site": _site_code(session, node.site_id), "registered": node.registered}
    if name is not None:
        node.name = name
    if site is not None:
        node.site_id = _site_id(session, site)
    if registered is not None:
        node.registered = registered
    session.flush()
    changed = audit.changes(before, {"name": node.name, "site": _site_code(session, node.site_id),
                                     "registered": node.registered})
    if changed:
        audit.record(session, actor=actor, action="node.update", subject=f"node:{node_id}", at=now,
                     details=changed)
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
            .outerjoin(Device, Device.node_id == Node.id)
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


def list_devices(session: Session, *, node_id: str | None = None) -> list[Device]:
    query = select(Device).order_by(Device.node_id, Device.code)
    if node_id is not None:
        query = query.where(Device.node_id == node_id)
    return list(session.scalars(query))


def upsert_device(session: Session, *, actor: Actor, node_id: str, code: str, kind: str, name: str = "",
                  counter: str | None = None, zone: str | None = None, now: datetime | None = None) -> Device:
    """Create or update a device of a node (audited when something changed)."""
    device, verb, changed = _upsert_device(session, node_id=node_id, code=code, kind=kind, name=name,
                                           counter=counter, zone=zone)
    if changed:
        audit.record(session, actor=actor, action=f"device.{verb}", subject=f"device:{node_id}/{code}",
                     at=now, details=changed)
    return device


def _upsert_device(session: Session, *, node_id: str, code: str, kind: str, name: str,
                   counter: str | None, zone: str | None) -> tuple[Device, str, dict[str, Any]]:
    if kind not in DEVICE_KINDS:
        raise Invalid(f"unknown device kind {kind!r}")
    if kind == "rating_box" and counter is None:
        raise Invalid("a rating box needs its counter")
    get_node(session, node_id=node_id)
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
    counter_row = _by_code(session, Counter, counter)
    zone_row = _by_code(session, Zone, zone)
    device.counter_id = counter_row.id if counter_row else None
    device.zone_id = zone_row.id if zone_row else None
    session.flush()
    changed = audit.changes(before, {"kind": kind, "name": name, "counter": counter, "zone": zone})
    return device, "update" if before else "create", changed


def _code(session: Session, model: type[Any], ident: int | None) -> str | None:
    row = session.get(model, ident) if ident is not None else None
    return row.code if row else None


def apply_declarations(session: Session, *, registry: RegistrySection, now: datetime | None = None) -> None:
    """Create or update what the config file declares (nothing is deleted). What this changes
    is audited as the hub's own doing (``system``, ``"source": "config"``); a start-up that
    changes nothing writes nothing."""
    trail: list[tuple[str, str, dict[str, Any]]] = []
    for s in registry.sites:
        site = session.scalar(select(Site).where(Site.code == s.code)) or Site(code=s.code)
        trail.append(("site", s.code, _declared(site, {"name": s.name})))
        session.add(site)
    session.flush()
    for z in registry.zones:
        zone = session.scalar(select(Zone).where(Zone.code == z.code)) or Zone(code=z.code)
        trail.append(("zone", z.code, _declared(zone, {"name": z.name, "kind": z.kind,
                                                       "site_id": _site_id(session, z.site)})))
        session.add(zone)
    for c in registry.counters:
        counter = session.scalar(select(Counter).where(Counter.code == c.code)) or Counter(code=c.code)
        trail.append(("counter", c.code, _declared(counter, {"name": c.name,
                                                             "site_id": _site_id(session, c.site)})))
        session.add(counter)
    session.flush()
    for n in registry.nodes:
        trail.append(("node", n.id, _register_node(session, node_id=n.id, name=n.name, site=n.site)[1]))
        for d in n.devices:
            _device, _verb, changed = _upsert_device(session, node_id=n.id, code=d.code, kind=d.kind,
                                                     name=d.name, counter=d.counter, zone=d.zone)
            trail.append(("device", f"{n.id}/{d.code}", changed))
    for area, subject, changed in trail:
        if changed:
            audit.record(session, actor=SYSTEM, action=f"{area}.declare", subject=f"{area}:{subject}",
                         at=now, details={**changed, "source": "config"})


# -- officers and roster -------------------------------------------------------------------
def list_officers(session: Session) -> list[Officer]:
    return list(session.scalars(select(Officer).order_by(Officer.code)))


def create_officer(session: Session, *, actor: Actor, code: str, full_name: str, title: str = "",
                   user_id: int | None = None, now: datetime | None = None) -> Officer:
    _unique(session, Officer, code)
    if user_id is not None and session.get(User, user_id) is None:
        raise Invalid(f"user {user_id} does not exist")
    officer = Officer(code=code, full_name=full_name, title=title, user_id=user_id)
    session.add(officer)
    session.flush()
    _audit(session, actor, "create", officer, at=now, user_id=user_id)
    return officer


def list_roster(session: Session, *, counter: str | None = None, start: datetime | None = None,
                end: datetime | None = None) -> list[RosterEntry]:
    query = select(RosterEntry).order_by(RosterEntry.starts_at)
    if counter is not None:
        query = query.where(RosterEntry.counter_id == _by_code(session, Counter, counter).id)
    if start is not None:
        query = query.where(RosterEntry.ends_at > start)
    if end is not None:
        query = query.where(RosterEntry.starts_at < end)
    return list(session.scalars(query))


def add_shift(session: Session, *, actor: Actor, officer_id: int, counter: str, starts_at: datetime,
              ends_at: datetime, now: datetime | None = None) -> RosterEntry:
    """Put an officer on duty at a counter for [starts_at, ends_at); ratings already stored in
    that window are attributed to them."""
    if ends_at <= starts_at:
        raise Invalid("a shift must end after it starts")
    officer = _get(session, Officer, officer_id)
    counter_row = _by_code(session, Counter, counter)
    overlap = session.scalar(select(RosterEntry).where(
        RosterEntry.counter_id == counter_row.id, RosterEntry.starts_at < ends_at,
        RosterEntry.ends_at > starts_at))
    if overlap is not None:
        raise Conflict(f"counter {counter!r} already has officer {overlap.officer_id} on duty "
                       f"from {overlap.starts_at.isoformat()} to {overlap.ends_at.isoformat()}")
    entry = RosterEntry(officer_id=officer_id, counter_id=counter_row.id, starts_at=starts_at,
                        ends_at=ends_at)
    session.add(entry)
    session.flush()
    _attribute(session, counter_code=counter, start=starts_at, end=ends_at, officer_id=officer_id)
    _audit_shift(session, actor, "add", entry, officer=officer, counter=counter, at=now)
    return entry


def remove_shift(session: Session, *, actor: Actor, entry_id: int, now: datetime | None = None) -> None:
    entry = _get(session, RosterEntry, entry_id)
    counter = session.get(Counter, entry.counter_id)
    assert counter is not None
    _attribute(session, counter_code=counter.code, start=entry.starts_at, end=entry.ends_at,
               officer_id=None)
    _audit_shift(session, actor, "remove", entry, officer=session.get(Officer, entry.officer_id),
                 counter=counter.code, at=now)
    session.delete(entry)
    session.flush()


def _audit_shift(session: Session, actor: Actor, verb: str, entry: RosterEntry, *, officer: Officer | None,
                 counter: str, at: datetime | None) -> None:
    audit.record(session, actor=actor, action=f"roster.{verb}", subject=f"roster:{counter}", at=at, details={
        "shift": entry.id, "officer": officer.code if officer else entry.officer_id,
        "officer_name": officer.full_name if officer else None, "starts_at": entry.starts_at,
        "ends_at": entry.ends_at})


def _attribute(session: Session, *, counter_code: str, start: datetime, end: datetime,
               officer_id: int | None) -> None:
    session.execute(
        update(Rating)
        .where(Rating.counter_code == counter_code, Rating.pressed_at >= start, Rating.pressed_at < end)
        .values(officer_id=officer_id)
    )
    rating_counts.recount(session, counter_code=counter_code, start=start, end=end)


def officers_on_duty(session: Session, *, presses: Iterable[tuple[str, datetime]]) -> list[int | None]:
    """The officer on duty for each (counter code, press time), in order; ``None`` if nobody.
    One query for all the counters (the shifts overlapping the presses' whole span)."""
    presses = list(presses)
    if not presses:
        return []
    shifts: dict[str, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    rows = session.execute(
        select(Counter.code, RosterEntry.starts_at, RosterEntry.ends_at, RosterEntry.officer_id)
        .select_from(RosterEntry).join(Counter, Counter.id == RosterEntry.counter_id)
        .where(Counter.code.in_(sorted({code for code, _ in presses})),
               RosterEntry.starts_at <= max(at for _, at in presses),
               RosterEntry.ends_at > min(at for _, at in presses))
    ).all()
    for code, starts, ends, officer in rows:
        shifts[code].append((starts, ends, officer))
    out: list[int | None] = []
    for code, at in presses:
        out.append(next((oid for s, e, oid in shifts[code] if s <= at < e), None))
    return out
