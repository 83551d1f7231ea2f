"""``node/{node}/telemetry``: store the sample, refresh the heartbeat, check thresholds."""

from __future__ import annotations

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, accept
from thanthien.hub.services import health
from thanthien.protocol.payloads import Telemetry


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    for msg in batch:
        sample = accept(session, msg, Telemetry, out)
        if sample is not None:
            health.record_telemetry(session, t=sample, now=msg.received_at, thresholds=ctx.thresholds,
                                    notify=ctx.notify)
