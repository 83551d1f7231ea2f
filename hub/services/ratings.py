"""Storing rating events exactly once, and reading them back.

Communes (issue 20): a rating is the commune of its counter. A commune user reads (lists,
summaries, exports) only the ratings of their commune's counters (:func:`for_viewer` narrows a
filter to them); a province user reads every counter's, those of counters not registered too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.hub.db import bulk
from thanthien.hub.db.models import Counter, Rating
from thanthien.hub.services import rating_counts, registry
from thanthien.hub.tenancy import Tenant
from thanthien.protocol.payloads import RatingEvent

log = logging.getLogger(__name__)


@dataclass
class StoreResult:
    """Event ids to ack per node: ``stored`` are new rows, ``duplicates`` were already there."""

    stored: dict[str, list[UUID]] = field(default_factory=lambda: defaultdict(list))
    duplicates: dict[str, list[UUID]] = field(default_factory=lambda: defaultdict(list))
    gaps: list[tuple[str, int, int]] = field(default_factory=list)
    counters: set[str] = field(default_factory=set)

    @property
    def stored_count(self) -> int:
        return sum(len(v) for v in self.stored.values())

    @property
    def duplicate_count(self) -> int:
        return sum(len(v) for v in self.duplicates.values())

    def ack_ids(self) -> dict[str, list[UUID]]:
        out: dict[str, list[UUID]] = defaultdict(list)
        for source in (self.stored, self.duplicates):
            for node, ids in source.items():
                out[node].extend(ids)
        return out


def check_claims(session: Session, *, events: Sequence[RatingEvent]) -> list[str | None]:
    """For each event, why it is refused (``None``: accepted). A registered node speaks only for
    a rating box the registry places on it, and only for the counter that box serves; one
    query for the whole batch. A node that is not registered cannot be checked (the registry
    says nothing about it): its ratings pass here, and it is flagged ``node_unregistered``."""
    declared = registry.declared_devices(session, node_ids={e.node for e in events}, kind="rating_box")
    out: list[str | None] = []
    for e in events:
        boxes = declared.get(e.node)
        if boxes is None:
            out.append(None)
        elif e.box not in boxes:
            out.append(f"box {e.box!r} is not a rating box the registry places on node {e.node!r}")
        elif boxes[e.box] != e.counter:
            serves = repr(boxes[e.box]) if boxes[e.box] is not None else "no counter"
            out.append(f"box {e.box!r} of node {e.node!r} serves {serves}, not counter {e.counter!r}")
        else:
            out.append(None)
    return out


def check_press_times(*, events: Sequence[RatingEvent], received_at: Sequence[datetime],
                      tolerance_s: float) -> list[str | None]:
    """For each event, why its press time is refused (``None``: accepted): a press more than
    ``tolerance_s`` after the hub received it (by the hub's clock) was stamped by a clock that
    runs ahead, and would land in a period that has not happened yet."""
    out: list[str | None] = []
    for e, received in zip(events, received_at, strict=True):
        ahead = (e.pressed_at - received).total_seconds()
        out.append(None if ahead <= tolerance_s else
                   f"press time {e.pressed_at.isoformat()} is {ahead:.0f} s ahead of the hub's clock "
                   f"({received.isoformat()}), more than ingest.future_press_tolerance_s = "
                   f"{tolerance_s:g} s: the node's clock is wrong")
    return out


def store_ratings(session: Session, *, events: list[RatingEvent], now: datetime) -> StoreResult:
    """Insert the events not stored yet (unique on node + event id), attributed to the officer
    on duty at their counter at press time. Validation and topic checks happen before this.

    Set-based, whatever the number of nodes and counters: one query for the officers on duty,
    one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` for the rows (what it returns is what this
    transaction stored; the rest were there already, also when another ingest worker stored
    them a moment ago), and each node's sequence noted once, in node order."""
    result = StoreResult()
    fresh: list[RatingEvent] = []
    seen: set[tuple[str, UUID]] = set()
    for event in events:
        key = (event.node, event.event_id)
        if key in seen:
            result.duplicates[event.node].append(event.event_id)  # same event twice in one batch
        else:
            seen.add(key)
            fresh.append(event)
    if not fresh:
        return result
    officers = registry.officers_on_duty(session, presses=[(e.counter, e.pressed_at) for e in fresh])
    candidates = [{"node_id": e.node, "event_id": e.event_id, "seq": e.seq, "box": e.box,
                   "counter_code": e.counter, "score": e.score, "pressed_at": e.pressed_at,
                   "received_at": now, "officer_id": officer_id, "clock_uncertain": e.clock_uncertain}
                  for e, officer_id in zip(fresh, officers, strict=True)]
    inserted = _insert_ignoring_duplicates(session, candidates)
    rows: list[dict[str, Any]] = []  # the rows this transaction inserted
    for row in candidates:
        if (row["node_id"], row["event_id"]) in inserted:
            rows.append(row)
            result.stored[row["node_id"]].append(row["event_id"])
            result.counters.add(row["counter_code"])
        else:
            result.duplicates[row["node_id"]].append(row["event_id"])
    rating_counts.add(session, rows=rows)
    seqs: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        seqs[row["node_id"]].append(row["seq"])
    for node_id in sorted(seqs):
        _note_sequence(session, node_id=node_id, seqs=sorted(seqs[node_id]), result=result)
    return result


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> set[tuple[str, UUID]]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the keys inserted: an event already stored
    (sent again, or raced by a second ingest worker) is harmless and not returned. Through the
    driver (:mod:`~thanthien.hub.db.bulk`): on PostgreSQL one statement of one array per column
    (``unnest``), on SQLite statements of many rows."""
    return bulk.insert_new(session, Rating.__table__, rows, ["node_id", "event_id"])  # type: ignore[return-value,arg-type]


def _note_sequence(session: Session, *, node_id: str, seqs: list[int], result: StoreResult) -> None:
    node = registry.node_row(session, node_id=node_id)
    if node is None:
        return
    last = node.last_seq or 0
    for seq in seqs:
        if last and seq > last + 1:
            result.gaps.append((node_id, last + 1, seq - 1))
            log.warning("node %s: rating sequence gap: %d..%d not received (yet)", node_id, last + 1, seq - 1)
        last = max(last, seq)
    node.last_seq = last


@dataclass(frozen=True)
class RatingFilter:
    start: datetime | None = None
    end: datetime | None = None
    counter: str | None = None
    officer_id: int | None = None
    node: str | None = None
    score: int | None = None
    counters: tuple[str, ...] | None = None
    """Only the ratings of these counters (a commune's, :func:`for_viewer`); ``None``: every counter."""

    def apply(self, query: Any) -> Any:
        if self.start is not None:
            query = query.where(Rating.pressed_at >= self.start)
        if self.end is not None:
            query = query.where(Rating.pressed_at < self.end)
        if self.counter is not None:
            query = query.where(Rating.counter_code == self.counter)
        if self.officer_id is not None:
            query = query.where(Rating.officer_id == self.officer_id)
        if self.node is not None:
            query = query.where(Rating.node_id == self.node)
        if self.score is not None:
            query = query.where(Rating.score == self.score)
        if self.counters is not None:
            query = query.where(Rating.counter_code.in_(self.counters))
        return query


def for_viewer(session: Session, flt: RatingFilter, *, viewer: Tenant) -> RatingFilter:
    """``flt`` narrowed to the counters of ``viewer``'s commune (a province user's: unchanged)."""
    mine = getattr(viewer, "commune_id", None)
    if mine is None:
        return flt
    codes = tuple(sorted(session.scalars(select(Counter.code).where(Counter.commune_id == mine))))
    if flt.counters is not None:
        codes = tuple(c for c in codes if c in flt.counters)
    return replace(flt, counters=codes)


def list_ratings(session: Session, *, viewer: Tenant, flt: RatingFilter, limit: int,
                 offset: int) -> tuple[list[Rating], int]:
    """One page, newest first, and the total matching the filter (of the counters ``viewer`` reaches)."""
    flt = for_viewer(session, flt, viewer=viewer)
    total = session.scalar(flt.apply(select(func.count()).select_from(Rating))) or 0
    rows = session.scalars(flt.apply(select(Rating)).order_by(Rating.pressed_at.desc(), Rating.id.desc())
                           .limit(limit).offset(offset))
    return list(rows), int(total)


def count_ratings(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Rating)) or 0)
