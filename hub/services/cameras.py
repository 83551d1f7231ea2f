"""CCTV health on the hub: each camera's current state, the history of its states, the
"camera down" alarm and uptime per day or month.

The node already holds a state for several checks before reporting it (edge hysteresis),
so every report that changes the state starts a new history period. The alarm waits
longer still: a camera must be down, frozen or black for ``alarm_after_s`` before IT staff
are paged, and it clears itself when the camera is back.

Unknown is not ok: while the hub holds a camera's node offline or lost, nobody knows what the
camera shows, so the camera is ``unknown`` from the moment the node went away (its own history
period, which uptime leaves out like any time no report covers), not the state it was last
reported in. It leaves ``unknown`` with the first report the node sends once it is back; that
report's state counts from the node's return at the earliest. :func:`follow_node` applies the
rule: after every node state change, for heartbeat expiry in the camera job, and before each
camera report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import CameraPeriod, CameraStatus, Node
from thanthien.hub.services import alarms, registry
from thanthien.hub.tenancy import Tenant, visible_clause
from thanthien.protocol.payloads import CameraHealth

ALARM_KIND = "camera_down"
UNKNOWN = "unknown"
AWAY = frozenset({"offline", "lost"})
"""Node states in which its cameras are unknown."""
ALARM_STATES = frozenset({"down", "frozen", "black"})
UP_STATES = frozenset({"ok", "degraded"})
"""A degraded camera (slow, or one probe failing) still records: it counts as up."""

LABELS = {"ok": "hoạt động bình thường", "degraded": "chập chờn", "down": "mất tín hiệu",
          "frozen": "đứng hình", "black": "màn hình đen", UNKNOWN: "không rõ"}

Granularity = Literal["day", "month"]


def subject(node_id: str, camera: str) -> str:
    return f"{node_id}/{camera}"


def check_claims(session: Session, *, reports: Sequence[CameraHealth]) -> list[str | None]:
    """For each report, why it is refused (``None``: accepted): a registered node reports only
    on a camera the registry declares on it, in one query for the batch. A node that is not
    registered cannot be checked and passes (it is flagged ``node_unregistered``)."""
    declared = registry.declared_devices(session, node_ids={r.node for r in reports}, kind="camera")
    return [None if (cams := declared.get(r.node)) is None or r.camera in cams else
            f"camera {r.camera!r} is not declared on node {r.node!r}" for r in reports]


def apply_health(session: Session, *, health: CameraHealth, now: datetime, alarm_after_s: float,
                 tz: ZoneInfo, notify: bool) -> CameraStatus:
    """Record one health report: current state, history period, alarm. While the hub holds the
    node offline or lost the camera stays unknown (a report can overtake the node's own
    "online"; the node sends its cameras' health again once it is back)."""
    follow_node(session, node_id=health.node, now=now)
    node = session.get(Node, health.node)
    since = min(health.since, now)
    status = session.scalar(select(CameraStatus).where(CameraStatus.node_id == health.node,
                                                       CameraStatus.camera == health.camera))
    if node is not None and node.state in AWAY:
        if status is None:
            status = CameraStatus(node_id=health.node, camera=health.camera, state=UNKNOWN,
                                  reason=away_reason(node), since=now, reported_at=now)
            session.add(status)
            _open_period(session, status)
        return status
    if status is None:
        status = CameraStatus(node_id=health.node, camera=health.camera, state=health.state,
                              reason=health.reason, since=since, reported_at=now)
        session.add(status)
        _open_period(session, status)
    elif status.state != health.state:
        since = max(since, status.since)  # a late report never rewrites the past
        if status.state == UNKNOWN and node is not None and node.state_at is not None:
            since = max(since, min(node.state_at, now))  # nor claims the time the node was away
        status.state, status.reason, status.since = health.state, health.reason, since
        _close_period(session, health.node, health.camera, since)
        _open_period(session, status)
    status.reason = health.reason
    status.reported_at = now
    status.connect_ms, status.brightness = health.connect_ms, health.brightness
    _evaluate_alarm(session, status, now=now, alarm_after_s=alarm_after_s, tz=tz, notify=notify)
    return status


def _open_period(session: Session, status: CameraStatus) -> None:
    """A period for the camera's current state, from its ``since``."""
    session.add(CameraPeriod(node_id=status.node_id, camera=status.camera, state=status.state,
                             reason=status.reason, started_at=status.since, ended_at=None))


def away_reason(node: Node) -> str:
    """Why a camera of an away node is unknown (English, as the other reasons)."""
    return f"node {node.state}" + (f": {node.state_reason}" if node.state_reason else "")


def follow_node(session: Session, *, now: datetime, node_id: str | None = None) -> int:
    """Make the cameras of a node the hub holds offline or lost unknown, from when it went away
    (``Node.state_at``); every such node when ``node_id`` is ``None``. Idempotent, so any path
    that changes a node's state may call it: the ingest state handler after
    ``health.apply_node_state``, the camera job after heartbeat expiry. Returns how many
    cameras became unknown. A node that is not away answers from the session without a query
    (its row is at hand: a province coming back sends thousands of online states at once)."""
    if node_id is not None:
        node = session.get(Node, node_id)
        if node is None or node.state not in AWAY:
            return 0
    query = (select(CameraStatus, Node).join(Node, Node.id == CameraStatus.node_id)
             .where(Node.state.in_(AWAY), CameraStatus.state != UNKNOWN))
    if node_id is not None:
        query = query.where(CameraStatus.node_id == node_id)
    rows = session.execute(query).all()
    for status, node in rows:
        start = min(max(node.state_at or now, status.since), now)
        status.state, status.reason, status.since, status.reported_at = UNKNOWN, away_reason(node), start, now
        status.connect_ms = status.brightness = None
        _close_period(session, status.node_id, status.camera, start)
        _open_period(session, status)
    return len(rows)


def _close_period(session: Session, node_id: str, camera: str, end: datetime) -> None:
    open_period = session.scalar(select(CameraPeriod).where(
        CameraPeriod.node_id == node_id, CameraPeriod.camera == camera,
        CameraPeriod.ended_at.is_(None)))
    if open_period is not None:
        open_period.ended_at = max(end, open_period.started_at)


def _evaluate_alarm(session: Session, status: CameraStatus, *, now: datetime, alarm_after_s: float,
                    tz: ZoneInfo, notify: bool) -> None:
    key = subject(status.node_id, status.camera)
    if status.state == UNKNOWN:
        return  # nobody knows: an alarm raised before stays, none is raised or cleared
    if status.state not in ALARM_STATES:
        alarms.clear_alarm(session, kind=ALARM_KIND, subject=key, now=now, notify=notify)
        return
    if (now - status.since).total_seconds() < alarm_after_s:
        return
    local_since = status.since.astimezone(tz)
    message = (f"Camera {status.camera} ({status.node_id}) {LABELS[status.state]} từ "
               f"{local_since:%H:%M %d/%m/%Y}: {status.reason}")
    alarms.raise_alarm(session, kind=ALARM_KIND, subject=key, severity="major", now=now,
                       notify=notify, message=message,
                       details={"node": status.node_id, "camera": status.camera,
                                "state": status.state, "reason": status.reason,
                                "since": status.since.isoformat()})


def check_alarms(session: Session, *, now: datetime, alarm_after_s: float, tz: ZoneInfo,
                 notify: bool) -> int:
    """For the scheduler: raise the alarms of cameras whose bad state has now lasted long
    enough (a camera that stays black sends no new report that could do it); first, the cameras
    of nodes the heartbeat check has found silent become unknown."""
    follow_node(session, now=now)
    bad = session.scalars(select(CameraStatus).where(CameraStatus.state.in_(ALARM_STATES))).all()
    for status in bad:
        _evaluate_alarm(session, status, now=now, alarm_after_s=alarm_after_s, tz=tz, notify=notify)
    return len(bad)


def _reached(viewer: Tenant, node_column: Any) -> Any:
    """The cameras of the nodes ``viewer`` reaches (a node not placed yet: the province's)."""
    return node_column.in_(select(Node.id).where(visible_clause(viewer, Node.commune_id)))


def list_status(session: Session, *, viewer: Tenant) -> list[CameraStatus]:
    """Every camera's current state, of the nodes ``viewer`` reaches."""
    return list(session.scalars(select(CameraStatus).where(_reached(viewer, CameraStatus.node_id))
                                .order_by(CameraStatus.node_id, CameraStatus.camera)))


def history(session: Session, *, viewer: Tenant, node_id: str, camera: str, start: datetime,
            end: datetime) -> list[CameraPeriod]:
    """The periods that overlap [start, end] (a period starting at ``end`` is included: the
    default ``end`` is now, and a state that began just now is news), oldest first. A node of
    a commune ``viewer`` does not reach is not found."""
    registry.get_node(session, node_id=node_id, viewer=viewer)
    return list(session.scalars(select(CameraPeriod).where(
        CameraPeriod.node_id == node_id, CameraPeriod.camera == camera,
        CameraPeriod.started_at <= end,
        or_(CameraPeriod.ended_at.is_(None), CameraPeriod.ended_at > start),
    ).order_by(CameraPeriod.started_at)))


@dataclass
class Uptime:
    node_id: str
    camera: str
    period: date  # first local day of the day or month
    seconds: dict[str, float] = field(default_factory=dict)  # state -> seconds
    unknown_s: float = 0.0  # no report covers it (before the first one, the node away, or ahead)

    @property
    def up_s(self) -> float:
        return sum(s for state, s in self.seconds.items() if state in UP_STATES)

    @property
    def observed_s(self) -> float:
        return sum(self.seconds.values())

    @property
    def uptime_pct(self) -> float | None:
        """Up time over observed time, 0–100; ``None`` when nothing was observed."""
        observed = self.observed_s
        return round(100 * self.up_s / observed, 3) if observed else None


def _buckets(start: date, end: date, granularity: Granularity) -> list[date]:
    out, day = [], start.replace(day=1) if granularity == "month" else start
    while day < end:
        out.append(day)
        if granularity == "day":
            day += timedelta(days=1)
        else:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def _next(bucket: date, granularity: Granularity) -> date:
    return bucket + timedelta(days=1) if granularity == "day" else \
        (bucket.replace(day=28) + timedelta(days=4)).replace(day=1)


def uptime(session: Session, *, viewer: Tenant, start: date, end: date, granularity: Granularity,
           tz: ZoneInfo, now: datetime, node_id: str | None = None,
           camera: str | None = None) -> list[Uptime]:
    """Seconds in each state per camera per local day or month in [start, end) (local dates),
    cut from the state history; an open period counts up to ``now``. Only the cameras of the
    nodes ``viewer`` reaches."""
    buckets = _buckets(start, end, granularity)
    if not buckets:
        return []
    lo = datetime.combine(buckets[0], time(), tz)
    hi = datetime.combine(_next(buckets[-1], granularity), time(), tz)
    query = select(CameraPeriod).where(_reached(viewer, CameraPeriod.node_id), CameraPeriod.started_at < hi,
                                       or_(CameraPeriod.ended_at.is_(None), CameraPeriod.ended_at > lo))
    if node_id is not None:
        query = query.where(CameraPeriod.node_id == node_id)
    if camera is not None:
        query = query.where(CameraPeriod.camera == camera)
    per_camera: dict[tuple[str, str], list[CameraPeriod]] = defaultdict(list)
    for period in session.scalars(query.order_by(CameraPeriod.started_at)):
        per_camera[(period.node_id, period.camera)].append(period)

    rows: list[Uptime] = []
    for (node, cam), periods in sorted(per_camera.items()):
        for bucket in buckets:
            b_lo = datetime.combine(bucket, time(), tz)
            b_hi = datetime.combine(_next(bucket, granularity), time(), tz)
            row = Uptime(node, cam, bucket)
            for p in periods:
                if p.state == UNKNOWN:
                    continue  # the node was away: counted in unknown_s, out of the ratio
                p_end = p.ended_at or now
                overlap = (min(p_end, b_hi) - max(p.started_at, b_lo)).total_seconds()
                if overlap > 0:
                    row.seconds[p.state] = row.seconds.get(p.state, 0.0) + overlap
            row.unknown_s = (b_hi - b_lo).total_seconds() - row.observed_s
            rows.append(row)
    return rows
