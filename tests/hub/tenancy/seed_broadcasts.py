"""The broadcasts part of a commune for the tenancy walk: a library file, an approved daily
broadcast on the commune's zone with its occurrences and deliveries, a zone rule, a speaker's
override and the commune's own rule, and a pronunciation dictionary term (province-wide)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import MediaItem, Occurrence
from thanthien.hub.roles import ADMIN, LEADER, OFFICER, SYSTEM, ActingUser
from thanthien.hub.services import broadcasts, media_items, plans, zone_rules
from thanthien.hub.services.broadcasts import BroadcastSpec
from thanthien.hub.services.schedule import BroadcastSettings
from thanthien.hub.services.zone_rules import RuleSpec
from thanthien.hub.tenancy import commune_by_code

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CFG = BroadcastSettings()
TERM = "HTX"
"""The dictionary is the province's (one for every commune): the same term in both communes."""


def seed(session: Session, *, commune: str, prefix: str, marker: str, now: datetime,
         registry: dict[str, Any]) -> dict[str, Any]:
    """Rows of this room in the commune (named with ``marker``); the ids the walk fills paths with."""
    commune_id = commune_by_code(session, commune).id
    users = registry["usernames"]
    officer = ActingUser(users["officer"], OFFICER, commune_id=commune_id)
    leader = ActingUser(users["leader"], LEADER, commune_id=commune_id)
    # the rules' author carries the marker: a change of the commune's rules shows in the walk
    admin = ActingUser(f"quan-tri-{marker}", ADMIN, commune_id=commune_id)
    sha = hashlib.sha256(f"{prefix}-ban-tin".encode()).hexdigest()
    session.add(MediaItem(sha256=sha, title=f"Bản tin {marker}", duration_s=60.0, size_bytes=1000,
                          source_format="WAV", source_sha256=sha, created_at=now, created_by=officer.username,
                          commune_id=commune_id))
    session.flush()
    b = broadcasts.create_broadcast(
        session, actor=officer, now=now, tz=TZ, cfg=CFG,
        spec=BroadcastSpec(title=f"Thông báo {marker}", media_sha256=sha, target_kind="zones",
                           target_zones=[registry["zone"]], schedule_kind="daily", local_time="07:00"))
    broadcasts.approve_broadcast(session, broadcast_id=b.id, actor=leader, now=now, tz=TZ, cfg=CFG)
    plans.materialise(session, now=now, tz=TZ, cfg=CFG)
    # the plans as published (a node's plan row is the hub's, made on the first publish after any
    # change: one commune's change must not be what makes the other's)
    plans.plans_to_publish(session, now=now, cfg=CFG, tz=TZ, force=False)
    occurrence = session.scalars(select(Occurrence).where(Occurrence.broadcast_id == b.id)
                                 .order_by(Occurrence.start_at)).first()
    assert occurrence is not None, "the approved daily broadcast has an occurrence"
    for where in (zone_rules.scope(session, viewer=admin, zone=registry["zone"]),
                  zone_rules.scope(session, viewer=admin, node=registry["speaker_node"]),
                  zone_rules.scope(session, viewer=admin)):
        zone_rules.set_rule(session, actor=admin, where=where, spec=RuleSpec(daily_minutes=600), now=now,
                            tz=TZ, cfg=CFG)
    media_items.set_lexicon_entry(session, actor=SYSTEM, term=TERM, spoken="hợp tác xã", now=now)
    session.flush()
    return {"broadcast_id": b.id, "sha256": sha, "media_sha256": sha, "occurrence_id": occurrence.id,
            "term": TERM}
