"""Play now / emergency and stop: the commands a leader sends to the speakers at once.

The API (``POST /api/v1/broadcasts/play-now``, ``…/stop``) and the web page's buttons both
call these two functions, which hold every rule: who may, that an emergency is confirmed,
which nodes are targeted, the command each node gets, the audit and the log line. The plan
follow-up happens on commit (``BROADCAST_CHANGES``), as for every broadcast change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Node, Zone
from thanthien.hub.roles import BROADCAST_APPROVERS, Actor, require
from thanthien.hub.services import plans
from thanthien.hub.services.broadcasts import Priority, TargetKind
from thanthien.hub.services.errors import Invalid, NotFound, Unavailable
from thanthien.hub.tenancy import Tenant, is_province, visible_clause
from thanthien.mqtt import MqttLink
from thanthien.protocol.payloads import Command

log = logging.getLogger(__name__)

CONFIRM_EMERGENCY = "Phát khẩn cấp sẽ ngắt mọi bản tin đang phát: cần xác nhận (confirm = true)."
NO_LINK = "Hub chưa kết nối MQTT, không gửi được lệnh."


class Targets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_kind: TargetKind = "all"
    target_zones: list[str] = Field(default_factory=list, max_length=500)
    target_nodes: list[str] = Field(default_factory=list, max_length=5000)


class PlayNowRequest(Targets):
    """What to play at once, and where (the API body; the web form fills the same)."""

    media_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    title: str = Field("", max_length=200)
    priority: Priority = "emergency"
    volume: int = Field(100, ge=0, le=100)
    confirm: bool = Field(False, description="Must be true for an emergency broadcast.")


class StopRequest(Targets):
    """Which speakers stop what they play now (and their queued play-now items)."""


@dataclass(frozen=True)
class PlayNowResult:
    broadcast_id: int
    occurrence_id: str
    start_at: datetime
    targets: list[str]


def _scoped(session: Session, actor: Tenant, request: Targets) -> tuple[str, list[str], list[str]]:
    """The request's targets as ``actor`` reaches them: a commune user's "every speaker" is their
    commune's speakers, and a zone or node of another commune is not found."""
    kind, zones, nodes = request.target_kind, list(request.target_zones), list(request.target_nodes)
    if is_province(actor):
        return kind, zones, nodes
    mine = visible_clause(actor, Node.commune_id)
    if kind == "all":
        return "nodes", [], sorted(session.scalars(select(Node.id).where(mine)))
    if kind == "zones":
        reached = set(session.scalars(select(Zone.code).where(Zone.code.in_(zones),
                                                                visible_clause(actor, Zone.commune_id))))
        missing = [z for z in zones if z not in reached]
        if missing:
            raise NotFound(f"Không có khu vực phát {', '.join(missing[:10])}.")
        return kind, zones, nodes
    reached = set(session.scalars(select(Node.id).where(Node.id.in_(nodes), mine)))
    missing = [n for n in nodes if n not in reached]
    if missing:
        raise NotFound(f"Không có thiết bị mã {', '.join(missing[:10])}.")
    return kind, zones, nodes


def _link(hub: HubContext) -> MqttLink:
    if hub.mqtt is None:
        raise Unavailable(NO_LINK)
    return hub.mqtt


def play_now(hub: HubContext, *, actor: Actor, request: PlayNowRequest) -> PlayNowResult:
    """Store a play-now broadcast and send its command to every target with one common start."""
    require(actor, BROADCAST_APPROVERS)
    if request.priority == "emergency" and not request.confirm:
        raise Invalid(CONFIRM_EMERGENCY)
    link = _link(hub)
    now, cfg = hub.clock(), hub.settings.broadcasts
    tz = ZoneInfo(hub.settings.hub.timezone)
    with hub.db.session() as session:
        kind, zones, nodes = _scoped(session, actor, request)
        p = plans.create_play_now(
            session, media_sha256=request.media_sha256, title=request.title, priority=request.priority,
            volume=request.volume, target_kind=kind, target_zones=zones,
            target_nodes=nodes, username=actor.username, now=now, tz=tz, cfg=cfg,
            commune_id=getattr(actor, "commune_id", None))
        commands = {node: c.to_bytes() for node, c in plans.play_now_commands(session, p, now=now, tz=tz,
                                                                              cfg=cfg).items()}
        result = PlayNowResult(broadcast_id=p.broadcast.id, occurrence_id=p.occurrence.id,
                               start_at=p.occurrence.start_at, targets=p.targets)
    for node in result.targets:
        link.publish(hub.topics.command(node, "play-now"), commands[node], qos=1)
    log.warning("play-now %s (%s) by %s to %d node(s)", result.occurrence_id, request.priority,
                actor.username, len(result.targets))
    return result


def stop(hub: HubContext, *, actor: Actor, request: StopRequest) -> list[str]:
    """Send ``stop`` to every targeted speaker; returns the nodes it went to."""
    require(actor, BROADCAST_APPROVERS)
    with hub.db.session(write=False) as session:
        kind, zones, nodes = _scoped(session, actor, request)
        targets = plans.stop_targets(session, actor=actor, target_kind=kind, target_zones=zones,
                                     target_nodes=nodes)
    link = _link(hub)
    now = hub.clock()
    command = Command(args={}, issued_at=now,
                      expires_at=now + timedelta(seconds=hub.settings.broadcasts.command_ttl_s)).to_bytes()
    for node in targets:
        link.publish(hub.topics.command(node, "stop"), command, qos=1)
    log.warning("stop sent by %s to %d node(s)", actor.username, len(targets))
    return targets
