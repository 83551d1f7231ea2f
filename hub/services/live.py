"""Live announcements (phát trực tiếp) from an officer's browser.

An officer or leader picks the zones (or speakers) and a priority on ``/ui/live`` and holds the
talk button; the browser sends the microphone's audio (16 kHz 16-bit mono PCM) over a
WebSocket to the hub (``hub/web/routes/live.py``), which relays it at once to every targeted
speaker on its ``node/{node}/live`` topic (``hub/live_relay.py``); each speaker plays it as it
arrives, interrupting lower priorities as a play-now does (``edge/speaker/live.py``).

A commune user speaks only to their commune's speakers (the live broadcast is their
commune's); a province user to any. This module holds the rules, as for every broadcast: who
may (``LIVE_SPEAKERS``; an emergency only ``BROADCAST_APPROVERS``), which speakers are
targeted, and the broadcast log. A live
announcement is a play-now broadcast (``schedule_kind`` ``now``) marked ``live_s``, with one
occurrence whose deliveries the speakers' reports fill in (started, finished, or interrupted
when a node's stream dropped). When it ends the hub keeps what was said as a recording in the
media library: the broadcast names it, its audit entry says who spoke, where, when and how
long. Until then the broadcast names the library's second of silence.
"""

from __future__ import annotations

import io
import logging
import uuid
import wave
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.config import Section
from thanthien.hub.db.models import Broadcast, Delivery, Occurrence
from thanthien.hub.db.session import mark_changed
from thanthien.hub.roles import BROADCAST_APPROVERS, LIVE_SPEAKERS, Actor, require
from thanthien.hub.services import media_items, relays
from thanthien.hub.services.broadcasts import (
    BROADCAST_CHANGES,
    Priority,
    TargetKind,
    audit,
    only_seen,
    resolve_targets,
    speaker_nodes,
)
from thanthien.hub.services.errors import Conflict, Invalid, NotFound
from thanthien.hub.services.media import MediaLibrary
from thanthien.hub.tenancy import Tenant, visible_clause

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MAX_LIVE_S = 1800.0
"""The longest announcement: its occurrence is checked for missing reports after this."""
DEFAULT_TITLE = "Phát trực tiếp"


class LiveSettings(Section):
    """The ``[live]`` table of the hub config."""

    lead_s: float = Field(
        1.5, ge=0, le=10, description="The live page says 'speak now' this long after the button is "
                                      "pressed: the speakers' amplifiers warm up meanwhile (`warmup_s`).")


class LiveRequest(BaseModel):
    """Where to speak and at which priority (the WebSocket's first message; the page's form)."""

    model_config = ConfigDict(extra="forbid")

    target_kind: TargetKind = "zones"
    target_zones: list[str] = Field(default_factory=list, max_length=500)
    target_nodes: list[str] = Field(default_factory=list, max_length=5000)
    priority: Priority = "priority"
    title: str = Field("", max_length=200)
    volume: int = Field(100, ge=0, le=100)


@dataclass(frozen=True)
class LiveOpened:
    broadcast_id: int
    occurrence_id: str
    title: str
    priority: str
    volume: int
    targets: list[str]
    started_at: datetime


def open_live(session: Session, *, actor: Actor, request: LiveRequest, lib: MediaLibrary,
              now: datetime) -> LiveOpened:
    """Start the broadcast log entry of a live announcement; which speakers to send it to."""
    require(actor, LIVE_SPEAKERS)
    if request.priority == "emergency":
        require(actor, BROADCAST_APPROVERS)
    if request.target_kind == "zones" and not request.target_zones:
        raise Invalid("Chọn ít nhất một khu vực phát.")
    targets = resolve_targets(request.target_kind, request.target_zones, request.target_nodes,
                              speaker_nodes(session, within=actor))  # a commune user: their speakers
    if not targets:
        raise Invalid("Không có cụm loa nào trong phạm vi đã chọn.")
    local_title = request.title.strip() or f"{DEFAULT_TITLE} ({actor.username})"
    b = Broadcast(
        title=local_title[:200], media_sha256=relays.silence_media(session, lib=lib, now=now),
        target_kind=request.target_kind,
        target_zones=sorted(set(request.target_zones)) if request.target_kind == "zones" else [],
        target_nodes=sorted(set(request.target_nodes)) if request.target_kind == "nodes" else [],
        volume=request.volume, priority=request.priority, schedule_kind="now", start_at=now,
        weekdays=[], holidays=[], status="approved", created_by=actor.username, created_at=now,
        updated_at=now, approved_by=actor.username, approved_at=now, live_s=0.0,
        commune_id=getattr(actor, "commune_id", None),
    )
    session.add(b)
    session.flush()
    occ = Occurrence(id=f"live{b.id}-{uuid.uuid4().hex[:8]}", broadcast_id=b.id, start_at=now,
                     duration_s=MAX_LIVE_S, media_sha256=b.media_sha256, priority=b.priority,
                     volume=b.volume, title=b.title, command=True)
    session.add(occ)
    session.flush()
    for node in targets:
        session.add(Delivery(occurrence_id=occ.id, node_id=node, status="pending", detail=""))
    audit(session, broadcast=b, username=actor.username, action="live_started", now=now,
          extra={"targets": targets})
    mark_changed(session, BROADCAST_CHANGES)
    log.warning("live announcement %s (%s) by %s to %d node(s)", occ.id, b.priority, actor.username,
                len(targets))
    return LiveOpened(b.id, occ.id, b.title, b.priority, b.volume, targets, now)


def pcm_wav(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()


def close_live(session: Session, *, actor: Actor, occurrence_id: str, pcm: bytes, lib: MediaLibrary,
               now: datetime, sample_rate: int = SAMPLE_RATE) -> Broadcast:
    """End a live announcement: keep what was said as a recording in the library, named by the
    broadcast, and say in the log who spoke, where, when and how long."""
    occ = session.get(Occurrence, occurrence_id)
    if occ is None:
        raise NotFound(f"Không có lần phát {occurrence_id}")
    b = session.get(Broadcast, occ.broadcast_id)
    if b is None or b.live_s is None:
        raise NotFound(f"Không phải phát trực tiếp: {occurrence_id}")
    if b.created_by != actor.username:
        raise Conflict("Chỉ người đang nói mới kết thúc được buổi phát trực tiếp này.")
    seconds = len(pcm) / (2 * sample_rate)
    spoken = (now - occ.start_at).total_seconds()
    recording = None
    if seconds >= 0.5:
        stamp = occ.start_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        try:
            item = media_items.add_upload(session, lib=lib, data=pcm_wav(pcm, sample_rate),
                                          filename="phat-truc-tiep.wav", title=f"{b.title} — {stamp}",
                                          username=actor.username, commune_id=b.commune_id, now=now)
            recording = item.sha256
            b.media_sha256 = occ.media_sha256 = item.sha256
        except Invalid as exc:
            log.error("live recording of %s not kept: %s", occurrence_id, exc)
    b.live_s = round(spoken, 1)
    b.updated_at = now
    occ.duration_s = max(spoken, 0.001)
    targets = sorted(session.scalars(select(Delivery.node_id).where(Delivery.occurrence_id == occ.id)))
    audit(session, broadcast=b, username=actor.username, action="live_ended", now=now,
          extra={"targets": targets, "duration_s": round(spoken, 1), "recorded_s": round(seconds, 1),
                 "recording_sha256": recording})
    mark_changed(session, BROADCAST_CHANGES)  # its delivery check moves to the real end
    log.info("live announcement %s ended after %.1f s (%.1f s recorded)", occurrence_id, spoken, seconds)
    return b


def recent(session: Session, *, viewer: Tenant, limit: int = 20) -> list[Broadcast]:
    """The latest live announcements ``viewer`` reads, newest first (the live page's log)."""
    rows = session.scalars(select(Broadcast).where(Broadcast.live_s.is_not(None),
                                                   visible_clause(viewer, Broadcast.commune_id, shared=True))
                           .order_by(Broadcast.created_at.desc()).limit(limit * 4))
    return only_seen(session, viewer, rows)[:limit]
