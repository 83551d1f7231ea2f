"""``node/{node}/event/rating``: check what the node claims, store exactly once, ack stored,
duplicate and refused ids alike."""

from __future__ import annotations

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, Refused, accept_from_nodes, refuse
from thanthien.hub.services import alarms, ratings
from thanthien.protocol.payloads import RatingEvent


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    accepted = accept_from_nodes(session, ctx, batch, RatingEvent, out)
    if not accepted:
        return
    claims = ratings.check_claims(session, events=[e for _, e in accepted])
    times = ratings.check_press_times(events=[e for _, e in accepted],
                                      received_at=[msg.received_at for msg, _ in accepted],
                                      tolerance_s=ctx.settings.ingest.future_press_tolerance_s)
    refused: list[Refused] = []
    events: list[RatingEvent] = []
    for (msg, event), claim, time in zip(accepted, claims, times, strict=True):
        if claim is not None:
            refused.append(Refused(msg, claim, event.event_id))
        elif time is not None:
            refused.append(Refused(msg, time, event.event_id, claim=False))
        else:
            events.append(event)
    refuse(session, ctx, refused, out)
    if not events:
        return
    now = batch[-1].received_at
    result = ratings.store_ratings(session, events=events, now=now)
    out.ack(batch[0].kind, result.ack_ids())
    out.count("thanthien_hub_ratings_stored_total", n=result.stored_count)
    out.count("thanthien_hub_ratings_duplicate_total", n=result.duplicate_count)
    out.count("thanthien_hub_sequence_gaps_total", n=len(result.gaps))
    # every rating of a batch comes to one call: the spike rule runs once per counter per batch
    alarms.evaluate_spikes(session, counters=result.counters, now=ctx.clock(), rule=ctx.spike_rule,
                           notify=ctx.notify)
