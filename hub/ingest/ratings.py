"""``node/{node}/event/rating``: store exactly once, ack stored and duplicate ids alike."""

from __future__ import annotations

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, accept_from_nodes
from thanthien.hub.services import alarms, ratings
from thanthien.protocol.payloads import RatingEvent


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    events = accept_from_nodes(session, ctx, batch, RatingEvent, out)
    if not events:
        return
    now = batch[-1].received_at
    result = ratings.store_ratings(session, events=events, now=now)
    out.ack(batch[0].kind, result.ack_ids())
    out.count("thanthien_hub_ratings_stored_total", n=result.stored_count)
    out.count("thanthien_hub_ratings_duplicate_total", n=result.duplicate_count)
    out.count("thanthien_hub_sequence_gaps_total", n=len(result.gaps))
    for counter in sorted(result.counters):
        alarms.evaluate_spike(session, counter=counter, now=ctx.clock(), rule=ctx.spike_rule,
                              notify=ctx.notify)
