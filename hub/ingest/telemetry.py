"""``node/{node}/telemetry``: store the samples, refresh the heartbeats, check thresholds."""

from __future__ import annotations

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, accept
from thanthien.hub.services import health
from thanthien.protocol.payloads import Telemetry


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    samples = [(sample, msg.received_at) for msg in batch
               if (sample := accept(session, msg, Telemetry, out)) is not None]
    health.record_telemetry_batch(session, samples=samples, thresholds=ctx.thresholds, notify=ctx.notify)
