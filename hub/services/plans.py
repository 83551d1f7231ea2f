"""Occurrences and the speaker nodes' plans.

``materialise`` turns every approved broadcast into occurrence rows (``broadcast_occurrences``)
for the plan horizon, each with one ``broadcast_deliveries`` row per targeted speaker node;
drafts and archived broadcasts lose their future occurrences. ``node_plan`` is what one node
must play: its occurrences from ``plan_keep_past_s`` ago to ``plan_days`` ahead.
``publish_plans`` sends each node its plan, retained, and gives the plan the next revision
whenever its items changed (a digest of the items is kept in ``node_plans``).

Play-now: a broadcast of schedule kind ``now`` with one occurrence, sent as a ``play-now``
command to each targeted node (args per ``edge/devices/speaker.py``), with a common
``start_at`` ``play_now_lead_s`` ahead so that the nodes start together.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Broadcast, Delivery, MediaItem, Node, NodePlan, Occurrence
from thanthien.hub.db.session import mark_changed
from thanthien.hub.services import zone_rules
from thanthien.hub.services.broadcasts import (
    BROADCAST_CHANGES,
    SpeakerCache,
    Within,
    audit,
    only_seen,
    resolve_targets,
    schedule_of,
    seen_ids,
    speaker_nodes,
)
from thanthien.hub.services.errors import Invalid
from thanthien.hub.services.schedule import BroadcastSettings, Schedule, occurrences
from thanthien.hub.tenancy import Tenant
from thanthien.protocol.payloads import MAX_PLAN_ITEMS, Command, Plan, PlanItem, StreamSource

log = logging.getLogger(__name__)


def occurrence_id(broadcast_id: int, start: datetime) -> str:
    return f"b{broadcast_id}-{start:%Y%m%dT%H%M%SZ}"


def media_url(sha256: str) -> str:
    """Relative to the node's ``speakers.hub_url`` (the hub's ``/api/v1/``)."""
    return f"media/{sha256}"


def _sync_deliveries(session: Session, occ: Occurrence, targets: list[str]) -> None:
    have = {d.node_id: d for d in session.scalars(select(Delivery).where(Delivery.occurrence_id == occ.id))}
    for node in targets:
        if node not in have:
            session.add(Delivery(occurrence_id=occ.id, node_id=node, status="pending", detail=""))
    for node, d in have.items():
        if node not in targets and d.status == "pending":
            session.delete(d)


def _drop(session: Session, ids: list[str]) -> None:
    if ids:
        session.execute(delete(Delivery).where(Delivery.occurrence_id.in_(ids)))
        session.execute(delete(Occurrence).where(Occurrence.id.in_(ids)))


def materialise(session: Session, *, now: datetime, tz: ZoneInfo, cfg: BroadcastSettings) -> int:
    """Bring the occurrence rows in line with the broadcasts; returns how many were added."""
    lo = now - timedelta(seconds=cfg.plan_keep_past_s)
    hi = now + timedelta(days=cfg.plan_days)
    speakers = SpeakerCache(session)  # a commune's broadcast plays on its commune's speakers only
    added = 0
    for b in session.scalars(select(Broadcast).where(Broadcast.schedule_kind != "now")):
        future = {
            o.id: o
            for o in session.scalars(
                select(Occurrence).where(Occurrence.broadcast_id == b.id, Occurrence.start_at > now)
            )
        }
        if b.status != "approved":
            _drop(session, list(future))
            continue
        media = session.get(MediaItem, b.media_sha256)
        if media is None:
            continue
        targets = speakers.targets(b)
        wanted = occurrences(schedule_of(b), start=lo, end=hi, tz=tz, limit=MAX_PLAN_ITEMS)
        wanted_ids = {occurrence_id(b.id, at): at for at in wanted}
        _drop(session, [oid for oid in future if oid not in wanted_ids])
        for oid, at in wanted_ids.items():
            occ = session.get(Occurrence, oid)
            if occ is None and at <= now:
                continue  # never invent an occurrence already due: nodes would play it late
            if occ is None:
                occ = Occurrence(
                    id=oid,
                    broadcast_id=b.id,
                    start_at=at,
                    duration_s=b.slot_s or media.duration_s,
                    media_sha256=b.media_sha256,
                    priority=b.priority,
                    volume=b.volume,
                    title=b.title,
                    command=False,
                )
                session.add(occ)
                session.flush()
                added += 1
            elif at > now:
                occ.media_sha256, occ.priority, occ.volume, occ.title = (
                    b.media_sha256,
                    b.priority,
                    b.volume,
                    b.title,
                )
                occ.duration_s = b.slot_s or media.duration_s
            if at > now:
                _sync_deliveries(session, occ, targets)
    session.flush()
    return added


def node_plan_items(
    session: Session, *, node_id: str, now: datetime, cfg: BroadcastSettings, tz: ZoneInfo,
    rules: zone_rules.RuleBook | None = None,
) -> list[PlanItem]:
    """What the node plays, each item at the volume its rule allows at that hour."""
    return plan_items_by_node(session, node_ids=[node_id], now=now, cfg=cfg, tz=tz, rules=rules)[node_id]


def plan_items_by_node(
    session: Session, *, node_ids: Iterable[str], now: datetime, cfg: BroadcastSettings, tz: ZoneInfo,
    rules: zone_rules.RuleBook | None = None,
) -> dict[str, list[PlanItem]]:
    """Each node's plan items (its deliveries of the window, by start time, at most
    ``MAX_PLAN_ITEMS``, each at the volume its rule allows at that hour), read in one query for
    all of them: a province hub has thousands of speaker nodes, and a query per node held its
    plan job for seconds."""
    wanted = set(node_ids)
    book = rules or zone_rules.book(session)
    lo = now - timedelta(seconds=cfg.plan_keep_past_s)
    hi = now + timedelta(days=cfg.plan_days)
    query = (
        select(Delivery.node_id, Occurrence)
        .select_from(Occurrence)
        .join(Delivery, Delivery.occurrence_id == Occurrence.id)
        .where(
            Occurrence.command.is_(False),
            Occurrence.start_at >= lo,
            Occurrence.start_at < hi,
        )
        .order_by(Delivery.node_id, Occurrence.start_at, Occurrence.id)
    )
    if len(wanted) == 1:
        query = query.where(Delivery.node_id.in_(wanted))
    rows = session.execute(query).all()
    ids = sorted({o.broadcast_id for _node, o in rows})
    streams = {
        b_id: StreamSource(url=url, fallback=fallback or "file")  # type: ignore[arg-type]
        for b_id, url, fallback in session.execute(
            select(Broadcast.id, Broadcast.stream_url, Broadcast.stream_fallback).where(
                Broadcast.id.in_(ids), Broadcast.stream_url.is_not(None)))
    } if ids else {}
    out: dict[str, list[PlanItem]] = {node_id: [] for node_id in wanted}
    rule_of: dict[str, zone_rules.Effective] = {}
    for node_id, o in rows:
        items = out.get(node_id)
        if items is None or len(items) >= MAX_PLAN_ITEMS:
            continue
        if node_id not in rule_of:
            rule_of[node_id] = book.for_node(node_id)
        items.append(PlanItem(
            occurrence_id=o.id,
            broadcast_id=o.broadcast_id,
            title=o.title,
            start_at=o.start_at,
            media_sha256=o.media_sha256,
            media_url=media_url(o.media_sha256),
            duration_s=max(o.duration_s, 0.001),
            priority=o.priority,  # type: ignore[arg-type]
            volume=zone_rules.volume_for(rule_of[node_id], volume=o.volume, priority=o.priority,
                                         at=o.start_at, duration_s=o.duration_s, tz=tz),
            stream=streams.get(o.broadcast_id),
        ))
    return out


def _digest(items: list[PlanItem]) -> str:
    body = json.dumps([i.model_dump(mode="json") for i in items], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class PlanOut:
    node_id: str
    plan: Plan
    changed: bool


def plans_to_publish(
    session: Session, *, now: datetime, cfg: BroadcastSettings, tz: ZoneInfo, force: bool
) -> list[PlanOut]:
    """Each speaker node's plan; those whose items changed get the next revision. Only the
    changed ones unless ``force`` (periodic republish)."""
    rows = {row.node_id: row for row in session.scalars(select(NodePlan))}
    nodes = set(speaker_nodes(session, within=Within(None))) | set(rows)
    items_of = plan_items_by_node(session, node_ids=nodes, now=now, cfg=cfg, tz=tz)
    out = []
    for node_id in sorted(nodes):
        items = items_of[node_id]
        digest = _digest(items)
        row = rows.get(node_id)
        changed = row is None or row.digest != digest
        if row is None:
            row = NodePlan(node_id=node_id, revision=1, digest=digest, items=len(items), generated_at=now)
            session.add(row)
        elif changed:
            row.revision, row.digest, row.items = row.revision + 1, digest, len(items)
        if changed or force:
            row.generated_at = now
            plan = Plan(
                node=node_id,
                revision=row.revision,
                generated_at=now,
                valid_until=now + timedelta(days=cfg.plan_days),
                items=items,
            )
            out.append(PlanOut(node_id, plan, changed))
    session.flush()
    return out


# -- play now ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlayNow:
    broadcast: Broadcast
    occurrence: Occurrence
    targets: list[str]


def create_play_now(
    session: Session,
    *,
    media_sha256: str,
    title: str,
    priority: str,
    volume: int,
    target_kind: str,
    target_zones: list[str],
    target_nodes: list[str],
    username: str,
    now: datetime,
    tz: ZoneInfo,
    cfg: BroadcastSettings,
    commune_id: int | None = None,
) -> PlayNow:
    """Store a play-now broadcast of ``commune_id`` (the actor's: it plays on that commune's
    speakers and files only; ``None``: the province's, anywhere); one that is not an emergency
    must keep to the zones' rules."""
    within = Within(commune_id)
    media = session.get(MediaItem, media_sha256)
    if media is None or (commune_id is not None and media.commune_id not in (None, commune_id)):
        raise Invalid("Chưa chọn tệp âm thanh có trong thư viện.")
    speakers = speaker_nodes(session, within=within)
    targets = resolve_targets(target_kind, target_zones, target_nodes, speakers)
    if not targets:
        raise Invalid("Không có cụm loa nào trong phạm vi đã chọn.")
    start = now + timedelta(seconds=cfg.play_now_lead_s)
    zone_rules.enforce(session, zone_rules.Candidate(
        schedule=Schedule(kind="now", start_at=start), duration_s=media.duration_s, priority=priority,
        target_kind=target_kind, target_zones=tuple(target_zones), target_nodes=tuple(target_nodes),
        commune_id=commune_id), now=now, tz=tz, cfg=cfg)
    b = Broadcast(
        title=title.strip() or media.title[:200],
        media_sha256=media_sha256,
        target_kind=target_kind,
        target_zones=sorted(set(target_zones)) if target_kind == "zones" else [],
        target_nodes=sorted(set(target_nodes)) if target_kind == "nodes" else [],
        volume=volume,
        priority=priority,
        schedule_kind="now",
        start_at=start,
        weekdays=[],
        holidays=[],
        status="approved",
        created_by=username,
        created_at=now,
        updated_at=now,
        approved_by=username,
        approved_at=now,
        commune_id=commune_id,
    )
    session.add(b)
    session.flush()
    occ = Occurrence(
        id=f"now{b.id}-{uuid.uuid4().hex[:8]}",
        broadcast_id=b.id,
        start_at=start,
        duration_s=media.duration_s,
        media_sha256=media_sha256,
        priority=priority,
        volume=volume,
        title=b.title,
        command=True,
    )
    session.add(occ)
    session.flush()
    for node in targets:
        session.add(Delivery(occurrence_id=occ.id, node_id=node, status="pending", detail=""))
    audit(session, broadcast=b, username=username, action="play_now", now=now, extra={"targets": targets})
    mark_changed(session, BROADCAST_CHANGES)
    return PlayNow(b, occ, targets)


def play_now_commands(session: Session, p: PlayNow, *, now: datetime, tz: ZoneInfo,
                      cfg: BroadcastSettings) -> dict[str, Command]:
    """Each target's command, at the volume its rule allows now."""
    rules = zone_rules.book(session)
    o = p.occurrence
    out = {}
    for node in p.targets:
        volume = zone_rules.volume_for(rules.for_node(node), volume=o.volume, priority=o.priority,
                                       at=o.start_at, duration_s=o.duration_s, tz=tz)
        out[node] = play_now_command(p, now=now, cfg=cfg, volume=volume)
    return out


def play_now_command(p: PlayNow, *, now: datetime, cfg: BroadcastSettings,
                     volume: int | None = None) -> Command:
    o = p.occurrence
    return Command(
        args={
            "occurrence_id": o.id,
            "broadcast_id": o.broadcast_id,
            "media_sha256": o.media_sha256,
            "media_url": media_url(o.media_sha256),
            "priority": o.priority,
            "volume": o.volume if volume is None else volume,
            "title": o.title[:200],
            "duration_s": round(max(o.duration_s, 0.001), 3),
            "start_at": o.start_at.isoformat(),
        },
        issued_at=now,
        expires_at=now + timedelta(seconds=cfg.command_ttl_s),
    )


def stop_targets(
    session: Session, *, actor: Tenant, target_kind: str, target_zones: list[str], target_nodes: list[str]
) -> list[str]:
    """The speakers a stop goes to: of ``actor``'s commune only (a province actor: any)."""
    targets = resolve_targets(target_kind, target_zones, target_nodes, speaker_nodes(session, within=actor))
    if not targets:
        raise Invalid("Không có cụm loa nào trong phạm vi đã chọn.")
    return targets


MAX_CALENDAR = timedelta(days=62)


def upcoming(
    session: Session, *, viewer: Tenant, start: datetime, end: datetime | None = None
) -> list[tuple[Occurrence, int]]:
    """Occurrences in ``[start, end)`` (default: a week) of the broadcasts ``viewer`` reads with
    their number of targeted nodes (of ``viewer``'s commune, for a commune user: a province
    broadcast counts only their speakers); a window of at most ``MAX_CALENDAR`` within the
    years 2000–2200."""
    if not (2000 <= start.year <= 2200 and (end is None or 2000 <= end.year <= 2200)):
        raise Invalid("Thời điểm phải nằm trong các năm 2000–2200")
    end = end or start + timedelta(days=7)
    if end <= start or end - start > MAX_CALENDAR:
        raise Invalid(f"Khoảng thời gian phải dương và tối đa {MAX_CALENDAR.days} ngày")
    seen = seen_ids(session, viewer)
    mine = getattr(viewer, "commune_id", None)
    on = Delivery.occurrence_id == Occurrence.id
    if mine is not None:
        on = and_(on, Delivery.node_id.in_(select(Node.id).where(Node.commune_id == mine)))
    query = (
        select(Occurrence, func.count(Delivery.id))
        .outerjoin(Delivery, on)
        .where(Occurrence.start_at >= start, Occurrence.start_at < end)
        .group_by(Occurrence.id)
        .order_by(Occurrence.start_at, Occurrence.id)
    )
    if seen is not None:
        query = query.where(Occurrence.broadcast_id.in_(seen))
    return [(o, int(n)) for o, n in session.execute(query)]


@dataclass(frozen=True)
class CalendarEntry:
    start_at: datetime
    broadcast_id: int
    title: str
    priority: str
    status: str
    targets: int
    quiet_exception: str | None = None
    """The reason of the quiet-hours exception the broadcast was granted, if any."""


def calendar(session: Session, *, viewer: Tenant, start: datetime, end: datetime,
             tz: ZoneInfo) -> list[CalendarEntry]:
    """What plays in ``[start, end)`` from the schedules themselves (any week, not only the plan
    horizon), drafts included, plus the play-now commands sent in that window: the broadcasts
    ``viewer`` reads, each with the number of its speakers ``viewer`` reaches."""
    speakers = SpeakerCache(session)
    mine = getattr(viewer, "commune_id", None)
    out = []
    for b in only_seen(session, viewer, session.scalars(
        select(Broadcast).where(Broadcast.status.in_(("draft", "approved")), Broadcast.schedule_kind != "now")
    )):
        counted = b if mine is None else Within(mine)
        targets = len(resolve_targets(b.target_kind, list(b.target_zones or []), list(b.target_nodes or []),
                                      speakers.of(counted)))
        for at in occurrences(schedule_of(b), start=start, end=end, tz=tz, limit=MAX_PLAN_ITEMS):
            out.append(CalendarEntry(at, b.id, b.title, b.priority, b.status, targets,
                                     b.quiet_exception_reason if b.quiet_exception_by else None))
    for occ, n in upcoming(session, viewer=viewer, start=start, end=end):
        if occ.command:
            out.append(CalendarEntry(occ.start_at, occ.broadcast_id, occ.title, occ.priority, "now", n))
    return sorted(out, key=lambda e: (e.start_at, e.broadcast_id))
