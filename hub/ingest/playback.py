"""``node/{node}/event/playback``: refuse reports on occurrences that did not target the node,
store each other report once, move the delivery report (the deliveries written after the
batch's node rows), ack stored, duplicate and refused ids alike."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, Refused, accept_from_nodes, after_node_rows, refuse
from thanthien.hub.services import deliveries
from thanthien.protocol.payloads import PlaybackEvent


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    accepted = accept_from_nodes(session, ctx, batch, PlaybackEvent, out)
    if not accepted:
        return
    claims = deliveries.check_claims(session, events=[e for _, e in accepted])
    verdicts = list(zip(accepted, claims, strict=True))
    refuse(session, ctx, [Refused(msg, reason, e.event_id) for (msg, e), reason in verdicts if reason], out)
    events = [e for (_, e), reason in verdicts if reason is None]
    if not events:
        return
    now = batch[-1].received_at
    result = deliveries.store_playback(session, events=events, now=now, proof_cfg=ctx.settings.proof)
    deliveries.refresh_alarms(
        session,
        occurrence_ids=result.occurrences,
        now=now,
        notify=ctx.notify,
        tz=ZoneInfo(ctx.settings.hub.timezone),
        judged=result.judged,
        moved=result.moved,
    )
    if result.moved:
        after_node_rows(session, lambda: deliveries.write_rows(session, result.moved))
    out.ack(batch[0].kind, result.acks)
    out.count("thanthien_hub_playback_stored_total", n=result.stored)
    out.count("thanthien_hub_playback_duplicate_total", n=result.duplicates)
