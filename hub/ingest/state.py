"""``node/{node}/state`` (retained): online / offline / lost with the session counter."""

from __future__ import annotations

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, accept
from thanthien.hub.services import cameras, health
from thanthien.protocol.payloads import NodeState


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    for msg in batch:
        if not msg.payload:
            continue  # a retained state being cleared (node decommissioned)
        state = accept(session, msg, NodeState, out)
        if state is not None:
            health.apply_node_state(session, state=state, now=msg.received_at, notify=ctx.notify)
            cameras.follow_node(session, node_id=state.node, now=msg.received_at)  # away: cameras unknown
