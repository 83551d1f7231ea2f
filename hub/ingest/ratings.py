"""``node/{node}/event/rating``: store exactly once, ack stored and duplicate ids alike."""

from __future__ import annotations

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, accept
from thanthien.hub.services import alarms, health, ratings
from thanthien.protocol.payloads import RatingEvent


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    events: list[RatingEvent] = []
    for msg in batch:
        event = accept(session, msg, RatingEvent, out)
        if event is not None:
            events.append(event)
    if not events:
        return
    now = batch[-1].received_at
    for node_id in sorted({e.node for e in events}):
        health.seen(session, node_id=node_id, now=now, notify=ctx.notify)
    result = ratings.store_ratings(session, events=events, now=now)
    for node_id, ids in result.ack_ids().items():
        out.acks[node_id].extend(ids)
    out.count("thanthien_hub_ratings_stored_total", n=result.stored_count)
    out.count("thanthien_hub_ratings_duplicate_total", n=result.duplicate_count)
    out.count("thanthien_hub_sequence_gaps_total", n=len(result.gaps))
    for counter in sorted(result.counters):
        alarms.evaluate_spike(session, counter=counter, now=ctx.clock(), rule=ctx.spike_rule,
                              notify=ctx.notify)
