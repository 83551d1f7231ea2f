"""``node/{node}/event/playback``: store each report once, move the delivery report, ack
stored and duplicate ids alike."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, accept_from_nodes
from thanthien.hub.services import deliveries
from thanthien.protocol.payloads import PlaybackEvent


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    events = accept_from_nodes(session, ctx, batch, PlaybackEvent, out)
    if not events:
        return
    now = batch[-1].received_at
    result = deliveries.store_playback(session, events=events, now=now)
    deliveries.refresh_alarms(
        session,
        occurrence_ids=result.occurrences,
        now=now,
        notify=ctx.notify,
        tz=ZoneInfo(ctx.settings.hub.timezone),
    )
    out.ack(batch[0].kind, result.acks)
    out.count("thanthien_hub_playback_stored_total", n=result.stored)
    out.count("thanthien_hub_playback_duplicate_total", n=result.duplicates)
