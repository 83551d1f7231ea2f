"""Read-only views the pages need that the hub's services do not give in one call: the
latest telemetry of each node, a node's state history, and cheap fingerprints that tell the
live-update stream when something changed. The overviews show what is in service: a retired
node, device or zone keeps its history (its own page, the reports) but no longer asks for
attention."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Alarm, CameraStatus, Counter, Device, Node, Rating, TelemetrySample, Zone
from thanthien.hub.services import cameras, health, registry
from thanthien.hub.tenancy import Tenant, visible_clause

RAW_LIMIT = timedelta(days=2)
"""Charts over a longer period use the hourly roll-ups (raw samples are pruned anyway)."""


@dataclass
class DeviceView:
    code: str
    kind: str
    name: str
    place: str  # counter name for a rating box, zone name for a speaker
    camera: CameraStatus | None = None  # a camera's last reported state
    declared: bool = True  # False: a camera that reports but is not in the registry


@dataclass
class NodeView:
    node: Node
    latest: TelemetrySample | None
    devices: list[DeviceView] = field(default_factory=list)
    open_alarms: int = 0


def latest_telemetry(session: Session, *, node_id: str) -> TelemetrySample | None:
    """The node's newest sample (the caller has the node, of a commune its viewer reaches)."""
    return session.scalar(select(TelemetrySample).where(TelemetrySample.node_id == node_id)
                          .order_by(TelemetrySample.received_at.desc(), TelemetrySample.id.desc()).limit(1))


def _retired_cameras(session: Session, viewer: Tenant) -> set[tuple[str, str]]:
    """Cameras taken out of service, themselves or with their node."""
    nodes = {n.id for n in registry.list_nodes(session, viewer=viewer, active=False)}
    devices = {(d.node_id, d.code) for d in registry.list_devices(session, viewer=viewer, active=False)
               if d.kind == "camera"}
    return devices | {(s.node_id, s.camera) for s in cameras.list_status(session, viewer=viewer)
                      if s.node_id in nodes}


def _device_views(session: Session, viewer: Tenant) -> dict[str, list[DeviceView]]:
    """The devices in service of each node, and the cameras that report without being declared."""
    counters = {c.id: c.name for c in session.scalars(select(Counter))}
    zones = {z.id: z.name for z in session.scalars(select(Zone))}
    retired = _retired_cameras(session, viewer)
    reached = {n.id for n in registry.list_nodes(session, viewer=viewer)}
    statuses = {(s.node_id, s.camera): s for s in cameras.list_status(session, viewer=viewer)
                if (s.node_id, s.camera) not in retired and s.node_id in reached}
    out: dict[str, list[DeviceView]] = {}
    for d in registry.list_devices(session, viewer=viewer, active=True):
        place = counters.get(d.counter_id, "") if d.counter_id else ""
        place = place or (zones.get(d.zone_id, "") if d.zone_id else "")
        camera = statuses.pop((d.node_id, d.code), None) if d.kind == "camera" else None
        out.setdefault(d.node_id, []).append(DeviceView(code=d.code, kind=d.kind, name=d.name, place=place,
                                                        camera=camera))
    for (node_id, code), status in statuses.items():
        out.setdefault(node_id, []).append(DeviceView(code=code, kind="camera", name="", place="",
                                                      camera=status, declared=False))
    return out


def camera_counts(session: Session, *, viewer: Tenant) -> dict[str, int]:
    """Cameras in service by state (of the nodes ``viewer`` reaches)."""
    retired = _retired_cameras(session, viewer)
    reached = {n.id for n in registry.list_nodes(session, viewer=viewer)}
    counts: dict[str, int] = {}
    for s in cameras.list_status(session, viewer=viewer):
        if (s.node_id, s.camera) not in retired and s.node_id in reached:
            counts[s.state] = counts.get(s.state, 0) + 1
    return counts


def node_overview(session: Session, *, viewer: Tenant) -> list[NodeView]:
    """Every node in service (registered or not) with its devices, latest telemetry and open alarm count.
    Nodes needing attention (lost, offline, unknown, with alarms) come first."""
    devices = _device_views(session, viewer)
    open_by_node: dict[str, int] = {}
    for subject, n in session.execute(select(Alarm.subject, func.count())
                                      .where(Alarm.cleared_at.is_(None),
                                             visible_clause(viewer, Alarm.commune_id))
                                      .group_by(Alarm.subject)):
        node_id = subject.split("/", 1)[0]  # a camera alarm's subject is "<node>/<camera>"
        open_by_node[node_id] = open_by_node.get(node_id, 0) + int(n)
    views = [NodeView(node=n, latest=latest_telemetry(session, node_id=n.id), devices=devices.get(n.id, []),
                      open_alarms=open_by_node.get(n.id, 0))
             for n in registry.list_nodes(session, viewer=viewer, active=True)]
    rank = {"lost": 0, "offline": 1, "unknown": 2, "online": 3}
    views.sort(key=lambda v: (rank.get(v.node.state, 2), -v.open_alarms, v.node.id))
    return views


def node_devices(session: Session, *, viewer: Tenant, node_id: str) -> list[DeviceView]:
    return _device_views(session, viewer).get(node_id, [])


@dataclass(frozen=True)
class StateChange:
    at: datetime
    state: str
    reason: str


def state_history(session: Session, *, node_id: str, start: datetime, end: datetime) -> list[StateChange]:
    """A node's state changes in [start, end), newest first, from its offline alarms: each one
    records when the node went offline or lost (and why) and, once cleared, when it came back.
    A node that never went down has no entries."""
    rows = session.scalars(select(Alarm).where(
        Alarm.kind == "node_offline", Alarm.subject == node_id, Alarm.raised_at < end,
        (Alarm.cleared_at.is_(None)) | (Alarm.cleared_at >= start)).order_by(Alarm.raised_at))
    out: list[StateChange] = []
    for alarm in rows:
        details = alarm.details or {}
        if start <= alarm.raised_at < end:
            out.append(StateChange(alarm.raised_at, str(details.get("state", "offline")),
                                   str(details.get("reason", ""))))
        if alarm.cleared_at is not None and start <= alarm.cleared_at < end:
            out.append(StateChange(alarm.cleared_at, "online", ""))
    out.sort(key=lambda c: c.at, reverse=True)
    return out


@dataclass(frozen=True)
class Series:
    """One measurement over time, for a chart: ``points`` are (UTC time, value)."""

    key: str
    label: str
    unit: str
    points: list[tuple[datetime, float]]


SERIES = (  # key, label, unit, raw attribute, hourly attribute
    ("cpu_temp_c", "Nhiệt độ CPU", "°C", "cpu_temp_c", "cpu_temp_max"),
    ("disk_used_pct", "Bộ nhớ đã dùng", "%", "disk_used_pct", "disk_used_pct_max"),
    ("outbox_depth", "Lượt đánh giá chờ gửi", "lượt", "outbox_depth", "outbox_depth_max"),
    ("load_1m", "Tải CPU (1 phút)", "", "load_1m", "load_1m_avg"),
    ("clock_offset_ms", "Độ lệch đồng hồ", "ms", "clock_offset_ms", None),
)


def telemetry_series(session: Session, *, viewer: Tenant, node_id: str, start: datetime,
                     end: datetime) -> tuple[list[Series], bool]:
    """The chart series of a node over [start, end) and whether they are hourly roll-ups."""
    hourly = end - start > RAW_LIMIT
    if hourly:
        rows: list = health.hourly_history(session, viewer=viewer, node_id=node_id, start=start, end=end)
        if rows:
            return [Series(key, label, unit, [(r.hour, float(getattr(r, attr))) for r in rows
                                              if getattr(r, attr) is not None])
                    for key, label, unit, _raw, attr in SERIES if attr], True
    rows = health.telemetry_history(session, viewer=viewer, node_id=node_id, start=start, end=end)
    return [Series(key, label, unit, [(r.received_at, float(getattr(r, attr))) for r in rows
                                      if getattr(r, attr) is not None])
            for key, label, unit, attr, _hourly in SERIES], False


# -- fingerprints for the live stream -------------------------------------------------------
def health_fingerprint(session: Session, *, viewer: Tenant) -> tuple:
    """Changes whenever a node's state or heartbeat, its telemetry, a camera's state, or an alarm
    changes (of the communes ``viewer`` reaches)."""
    reached = visible_clause(viewer, Node.commune_id)
    nodes = tuple(session.execute(select(Node.id, Node.state, Node.last_seen_at, Node.registered)
                                  .where(reached).order_by(Node.id)).all())
    latest = session.scalar(select(func.max(TelemetrySample.id)).join(Node,
                                                                      Node.id == TelemetrySample.node_id)
                            .where(reached))
    cams = tuple(session.execute(select(CameraStatus.node_id, CameraStatus.camera, CameraStatus.state,
                                        CameraStatus.reason).join(Node, Node.id == CameraStatus.node_id)
                                 .where(reached).order_by(CameraStatus.id)).all())
    return nodes, latest, cams, _alarm_marks(session, None, viewer)


def _alarm_marks(session: Session, audience: str | None, viewer: Tenant) -> tuple:
    query = select(func.count(), func.max(Alarm.id), func.count(Alarm.acknowledged_at),
                   func.count(Alarm.cleared_at)).where(visible_clause(viewer, Alarm.commune_id))
    if audience is not None:
        query = query.where(Alarm.audience == audience)
    return tuple(session.execute(query).one())


def presses_fingerprint(session: Session, *, since: datetime) -> tuple:
    """Changes when a press of the period since ``since`` is stored (or attributed anew)."""
    return tuple(session.execute(select(func.count(), func.max(Rating.id), func.sum(Rating.officer_id))
                                 .where(Rating.pressed_at >= since)).one())


def leader_alarms_fingerprint(session: Session, *, viewer: Tenant) -> tuple:
    return _alarm_marks(session, "leader", viewer)


def speakers_by_zone(session: Session, *, viewer: Tenant) -> list[tuple[str, list[Device]]]:
    """Zones with the speakers serving them (for the officers' overview)."""
    zones = {z.id: z for z in registry.list_zones(session, viewer=viewer, active=True)}
    grouped: dict[int | None, list[Device]] = {}
    for d in registry.list_devices(session, viewer=viewer, active=True):
        if d.kind == "speaker":
            grouped.setdefault(d.zone_id, []).append(d)
    out = [(zones[zid].name, grouped.get(zid, [])) for zid in sorted(zones, key=lambda i: zones[i].code)]
    if None in grouped:
        out.append(("(chưa gán khu vực phát)", grouped[None]))
    return out
