"""Node health: retained state with session counters, telemetry, heartbeat expiry, threshold
alarms, and telemetry retention with hourly roll-ups.

``clock_unsynced`` is raised while NTP says the node's clock is not synchronised, its offset
(from NTP or from the hub's time beacon) exceeds ``clock_offset_ms_max``, or the node says it
does not trust its clock (it then holds its scheduled broadcasts: the message counts them, and
the alarm is major while it holds any)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from thanthien.hub.db import bulk
from thanthien.hub.db.models import Node, TelemetryHourly, TelemetrySample
from thanthien.hub.services import alarms, registry
from thanthien.hub.tenancy import Tenant, visible_clause
from thanthien.protocol.payloads import NodeState, Telemetry

log = logging.getLogger(__name__)

REASON_WILL = "last will: connection lost"
REASON_CLEAN = "clean stop"
REASON_HEARTBEAT = "heartbeat expired"
REASON_TEXT = {REASON_WILL: "mất kết nối đột ngột", REASON_CLEAN: "dừng có chủ đích",
               REASON_HEARTBEAT: "quá thời gian không gửi tín hiệu"}
"""Reasons as people read them (alarm messages); the English ones stay in logs and the API."""


@dataclass(frozen=True)
class Thresholds:
    outbox_depth_max: int = 100
    disk_used_pct_max: float = 90.0
    cpu_temp_c_max: float = 75.0
    clock_offset_ms_max: float = 2000.0


def _offline_alarm(session: Session, node: Node, now: datetime, notify: bool) -> None:
    if node.retired_at is not None:
        return  # taken out of service: its connection was ended on purpose (its last Will follows)
    severity: alarms.Severity = "warning" if node.state == "offline" and node.state_reason == REASON_CLEAN \
        else "critical"
    label = {"lost": "mất kết nối", "offline": "ngoại tuyến"}[node.state]
    alarms.raise_alarm(session, kind="node_offline", subject=node.id, severity=severity, now=now,
                       notify=notify, commune_id=node.commune_id,
                       message=f"Thiết bị {node.name or node.id} {label} "
                               f"({REASON_TEXT.get(node.state_reason, node.state_reason)})",
                       details={"node": node.id, "state": node.state, "reason": node.state_reason})


def _online(session: Session, node: Node, session_no: int, now: datetime, notify: bool) -> None:
    node.state, node.state_reason, node.session, node.state_at = "online", "", session_no, now
    node.last_seen_at = now
    alarms.clear_alarm(session, kind="node_offline", subject=node.id, now=now, notify=notify)


def seen(session: Session, *, node_id: str, now: datetime, notify: bool) -> Node:
    """The node, recorded as unregistered (with an alarm) if the hub does not know it."""
    node, new = registry.node_seen(session, node_id=node_id, now=now)
    if new:
        alarms.raise_alarm(session, kind="node_unregistered", subject=node_id, severity="warning", now=now,
                           notify=notify, message=f"Thiết bị {node_id} chưa được đăng ký",
                           details={"node": node_id}, commune_id=node.commune_id)
    return node


def apply_node_state(session: Session, *, state: NodeState, now: datetime, notify: bool) -> Node:
    """Apply a retained state message. A message of an older session (a late Will) is ignored."""
    node = seen(session, node_id=state.node, now=now, notify=notify)
    if state.session < node.session:
        log.info("node %s: ignoring %s of old session %d (current %d)", node.id, state.state,
                 state.session, node.session)
        return node
    if node.agent_version != state.agent_version:  # a column left untouched stays out of the UPDATE
        node.agent_version = state.agent_version
    if node.capabilities != list(state.capabilities):
        node.capabilities = list(state.capabilities)
    if state.state == "online":
        _online(session, node, state.session, now, notify)
        return node
    node.state, node.session, node.state_at = state.state, state.session, now
    node.state_reason = REASON_WILL if state.state == "lost" else REASON_CLEAN
    _offline_alarm(session, node, now, notify)
    return node


def record_telemetry(session: Session, *, t: Telemetry, now: datetime, thresholds: Thresholds,
                     notify: bool) -> Node:
    """Store one sample, refresh the heartbeat, and raise or clear the threshold alarms."""
    node = seen(session, node_id=t.node, now=now, notify=notify)
    session.execute(insert(TelemetrySample.__table__), [_sample_row(t, now)])
    _heartbeat(session, node=node, t=t, now=now, thresholds=thresholds, notify=notify)
    return node


def record_telemetry_batch(session: Session, *, samples: Sequence[tuple[Telemetry, datetime]],
                           thresholds: Thresholds, notify: bool) -> list[Node]:
    """:func:`record_telemetry` for the samples of an ingest batch, in their order: one INSERT
    for all of them, and the active alarms of their nodes read once (the thresholds of each
    sample are then checked in memory)."""
    if not samples:
        return []
    alarms.read_active(session, subjects={t.node for t, _ in samples})
    nodes = []
    for t, now in samples:
        node = seen(session, node_id=t.node, now=now, notify=notify)
        _heartbeat(session, node=node, t=t, now=now, thresholds=thresholds, notify=notify)
        nodes.append(node)
    bulk.insert(session, TelemetrySample.__table__, [_sample_row(t, now) for t, now in samples])  # type: ignore[arg-type]
    return nodes


def _sample_row(t: Telemetry, now: datetime) -> dict[str, Any]:
    return {"node_id": t.node, "session": t.session, "at": t.at, "received_at": now, "uptime_s": t.uptime_s,
            "agent_version": t.agent_version, "cpu_temp_c": t.cpu_temp_c, "load_1m": t.load_1m,
            "mem_used_pct": t.mem_used_pct, "disk_used_pct": t.disk_used_pct, "disk_free_mb": t.disk_free_mb,
            "outbox_depth": t.outbox_depth, "ignored_presses": t.ignored_presses,
            "clock_synced": t.clock_synced, "clock_offset_ms": t.clock_offset_ms,
            "clock_trusted": t.clock_trusted, "hub_offset_ms": t.hub_offset_ms,
            "held_broadcasts": t.held_broadcasts}


def _heartbeat(session: Session, *, node: Node, t: Telemetry, now: datetime, thresholds: Thresholds,
               notify: bool) -> None:
    """What a sample says about its node: the heartbeat, back online, the threshold alarms."""
    if t.session < node.session:
        return  # a straggler from an old session says nothing about the current one
    if node.state == "online" and t.session == node.session:
        node.last_seen_at = now
    elif t.session > node.session or node.state_reason == REASON_HEARTBEAT or node.state == "unknown":
        log.info("node %s: telemetry of session %d, back online", node.id, t.session)
        _online(session, node, t.session, now, notify)
    if node.agent_version != t.agent_version:  # a node row left untouched stays out of the flush
        node.agent_version = t.agent_version
    _threshold_alarms(session, node=node, t=t, now=now, th=thresholds, notify=notify)


def _threshold_alarms(session: Session, *, node: Node, t: Telemetry, now: datetime, th: Thresholds,
                      notify: bool) -> None:
    name = node.name or node.id
    checks: list[tuple[str, alarms.Severity, bool, str]] = [
        ("outbox_backlog", "warning", t.outbox_depth > th.outbox_depth_max,
         f"Thiết bị {name}: {t.outbox_depth} lượt đánh giá chưa gửi được về trung tâm"),
        ("disk_full", "major", t.disk_used_pct >= th.disk_used_pct_max,
         f"Thiết bị {name}: bộ nhớ đã dùng {t.disk_used_pct:.0f}%"),
        ("high_temperature", "major", t.cpu_temp_c is not None and t.cpu_temp_c >= th.cpu_temp_c_max,
         f"Thiết bị {name}: nhiệt độ CPU {t.cpu_temp_c or 0:.0f}°C"),
        ("clock_unsynced", "major" if t.held_broadcasts else "warning", _clock_wrong(t, th),
         _clock_message(name, t)),
    ]
    for kind, severity, active, message in checks:
        if active:
            alarms.raise_alarm(session, kind=kind, subject=node.id, severity=severity, message=message,
                               now=now, notify=notify, details={"node": node.id}, commune_id=node.commune_id)
        else:
            alarms.clear_alarm(session, kind=kind, subject=node.id, now=now, notify=notify)


def _clock_wrong(t: Telemetry, th: Thresholds) -> bool:
    limit = th.clock_offset_ms_max
    return (t.clock_synced is False or t.clock_trusted is False
            or (t.clock_offset_ms is not None and abs(t.clock_offset_ms) > limit)
            or (t.hub_offset_ms is not None and abs(t.hub_offset_ms) > limit))


def offset_text(ms: float) -> str:
    """An offset (reference minus node, in ms) as people read it: "nhanh 3,0 giờ", "chậm 12 giây"."""
    size = abs(ms) / 1000
    if size < 10:
        amount = f"{abs(ms):.0f} ms"
    elif size < 120:
        amount = f"{size:.0f} giây"
    elif size < 2 * 3600:
        amount = f"{size / 60:.0f} phút"
    else:
        amount = f"{size / 3600:.1f} giờ".replace(".", ",")
    return f"{'chậm' if ms > 0 else 'nhanh'} {amount}"


def _clock_message(name: str, t: Telemetry) -> str:
    if t.clock_trusted is None:  # a node too old to say more
        return f"Thiết bị {name}: đồng hồ chưa được đồng bộ (lệch {t.clock_offset_ms or 0:.0f} ms)"
    text = f"Thiết bị {name}: đồng hồ chưa được đồng bộ"
    if t.hub_offset_ms is not None:
        text += f" ({offset_text(t.hub_offset_ms)} so với trung tâm)"
    elif t.clock_offset_ms is not None:
        text += f" (lệch {t.clock_offset_ms:.0f} ms)"
    if t.clock_trusted is False:
        held = t.held_broadcasts or 0
        text += f", đang giữ {held} bản tin chưa phát" if held else ", các bản tin theo lịch sẽ chờ"
    return text


def expire_heartbeats(session: Session, *, now: datetime, heartbeat_s: float, factor: float,
                      notify: bool, heard_until: datetime | None = None) -> list[str]:
    """Online nodes silent for ``factor`` heartbeats become offline; returns their ids.

    Silence is counted up to ``heard_until`` when given (and earlier than ``now``): the moment up to
    which the hub has taken in what reached it (``HubContext.heard_until``), so that a node whose
    telemetry waits in the hub's backlog (a province coming back at once) is not marked offline.
    The rows are taken in node id order, skipping a row another transaction holds (on PostgreSQL:
    an ingest batch writing that node, which is being heard from right now), so the job never
    waits for ingest nor deadlocks with it."""
    until = min(now, heard_until) if heard_until is not None else now
    limit = until - timedelta(seconds=heartbeat_s * factor)
    silent = list(session.scalars(select(Node).where(Node.state == "online", Node.last_seen_at < limit)
                                  .order_by(Node.id).with_for_update(skip_locked=True)))
    for node in silent:
        node.state, node.state_reason, node.state_at = "offline", REASON_HEARTBEAT, now
        log.warning("node %s: no telemetry since %s: offline", node.id, node.last_seen_at)
        _offline_alarm(session, node, now, notify)
    return [n.id for n in silent]


def state_counts(session: Session, *, viewer: Tenant) -> dict[str, int]:
    """Nodes per state, of the communes ``viewer`` reaches (nodes not placed yet: the province's)."""
    rows = session.execute(select(Node.state, func.count()).where(visible_clause(viewer, Node.commune_id))
                           .group_by(Node.state)).all()
    return {state: int(n) for state, n in rows}


def unregistered_count(session: Session, *, viewer: Tenant) -> int:
    return int(session.scalar(select(func.count()).select_from(Node).where(
        Node.registered.is_(False), visible_clause(viewer, Node.commune_id))) or 0)


# -- telemetry history ---------------------------------------------------------------------
def telemetry_history(session: Session, *, viewer: Tenant, node_id: str, start: datetime, end: datetime,
                      limit: int = 5000) -> list[TelemetrySample]:
    """The node's samples (a node of a commune ``viewer`` does not reach is not found)."""
    registry.get_node(session, node_id=node_id, viewer=viewer)
    return list(session.scalars(
        select(TelemetrySample).where(TelemetrySample.node_id == node_id,
                                      TelemetrySample.received_at >= start,
                                      TelemetrySample.received_at <= end)
        .order_by(TelemetrySample.received_at).limit(limit)))


def hourly_history(session: Session, *, viewer: Tenant, node_id: str, start: datetime,
                   end: datetime) -> list[TelemetryHourly]:
    registry.get_node(session, node_id=node_id, viewer=viewer)
    return list(session.scalars(
        select(TelemetryHourly).where(TelemetryHourly.node_id == node_id, TelemetryHourly.hour >= start,
                                      TelemetryHourly.hour < end).order_by(TelemetryHourly.hour)))


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def rollup_telemetry(session: Session, *, now: datetime, lookback_hours: int = 3) -> int:
    """(Re)compute the hourly roll-ups of the last ``lookback_hours`` finished hours (late samples
    included); returns how many rows were written. Hours with no roll-up yet, further back, are
    filled too, so a hub that was down catches up."""
    end = _hour(now)
    latest = session.scalar(select(func.max(TelemetryHourly.hour)))
    start = end - timedelta(hours=lookback_hours)
    if latest is None:
        first = session.scalar(select(func.min(TelemetrySample.received_at)))
        if first is None:
            return 0
        start = min(start, _hour(first))
    else:
        start = min(start, latest + timedelta(hours=1))
    samples = session.execute(
        select(TelemetrySample.node_id, TelemetrySample.received_at, TelemetrySample.cpu_temp_c,
               TelemetrySample.load_1m, TelemetrySample.mem_used_pct, TelemetrySample.disk_used_pct,
               TelemetrySample.outbox_depth)
        .where(TelemetrySample.received_at >= start, TelemetrySample.received_at < end)).all()
    folds: dict[tuple[str, datetime], list[tuple]] = {}
    for row in samples:
        folds.setdefault((row[0], _hour(row[1])), []).append(tuple(row))
    session.execute(delete(TelemetryHourly).where(TelemetryHourly.hour >= start, TelemetryHourly.hour < end))
    for (node_id, hour), rows in folds.items():
        temps = [r[2] for r in rows if r[2] is not None]
        session.add(TelemetryHourly(
            node_id=node_id, hour=hour, samples=len(rows),
            cpu_temp_avg=sum(temps) / len(temps) if temps else None, cpu_temp_max=max(temps, default=None),
            load_1m_avg=sum(r[3] for r in rows) / len(rows), mem_used_pct_max=max(r[4] for r in rows),
            disk_used_pct_max=max(r[5] for r in rows), outbox_depth_max=max(r[6] for r in rows)))
    return len(folds)


def prune_telemetry(session: Session, *, now: datetime, retention_days: int) -> int:
    """Delete raw samples older than the retention period (roll-ups stay)."""
    result = session.execute(delete(TelemetrySample).where(
        TelemetrySample.received_at < now - timedelta(days=retention_days)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
