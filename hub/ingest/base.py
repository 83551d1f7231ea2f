"""Types shared by the ingest handlers, and the decode-or-dead-letter step they all use."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from sqlalchemy import event
from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.services import alarms, health
from thanthien.hub.services.deadletters import record_dead_letter
from thanthien.protocol.payloads import Payload, PayloadError, decode
from thanthien.protocol.topics import EVENT_KINDS

P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    kind: str
    node: str | None
    received_at: datetime


@dataclass
class Outcome:
    """What a batch did: acks to publish after the commit, and metric increments."""

    acks_by_kind: dict[str, dict[str, list[UUID]]] = field(default_factory=dict)
    """Event kind (the kind of the topic the events came on) -> node -> event ids to ack."""
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count(self, metric: str, label: str = "", n: int = 1) -> None:
        self.counts[(metric, label)] += n

    def ack(self, kind: str, ids_by_node: Mapping[str, Iterable[UUID]]) -> None:
        """Ack these event ids to their nodes, under ``kind``, once the batch is committed."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"{kind!r} is not a node event kind (one of {', '.join(EVENT_KINDS)})")
        per_node = self.acks_by_kind.setdefault(kind, defaultdict(list))
        for node, ids in ids_by_node.items():
            per_node[node].extend(ids)

    def acks_for(self, kind: str) -> dict[str, list[UUID]]:
        """Node -> event ids this batch acks under ``kind`` (empty when none)."""
        return dict(self.acks_by_kind.get(kind, {}))


Handler = Callable[[Session, HubContext, list[Incoming], Outcome], None]

_AFTER_NODE_ROWS = "thanthien.ingest.after_node_rows"


def after_node_rows(session: Session, write: Callable[[], None]) -> None:
    """Run ``write`` once the batch's node rows are written (``commit_batch``, before the
    commit). A handler's own set-based writes of shared rows (deliveries) go there, so every
    worker takes its row locks in one order, the node rows first, and two cannot deadlock. A
    handler run outside a batch (a test, a tool) has them written at its session's commit."""
    pending = session.info.get(_AFTER_NODE_ROWS)
    if pending is None:
        pending = session.info[_AFTER_NODE_ROWS] = []
        event.listen(session, "before_commit", run_after_node_rows, once=True)
    pending.append(write)


def run_after_node_rows(session: Session) -> None:
    for write in session.info.pop(_AFTER_NODE_ROWS, []):
        write()


def dead_letter(session: Session, msg: Incoming, reason: str, out: Outcome) -> None:
    record_dead_letter(session, topic=msg.topic, kind=msg.kind, node_id=msg.node, reason=reason,
                       payload=msg.payload, now=msg.received_at)
    out.count("thanthien_hub_dead_letters_total", msg.kind)


def accept(session: Session, msg: Incoming, model: type[P], out: Outcome) -> P | None:
    """The validated payload, or ``None`` after recording why it was refused. A payload must
    name the node of its topic (a node cannot speak for another)."""
    try:
        payload = decode(model, msg.payload)
    except PayloadError as exc:
        dead_letter(session, msg, exc.reason, out)
        return None
    claimed = getattr(payload, "node", None)
    if msg.node is not None and claimed is not None and claimed != msg.node:
        reason = f"node id {claimed!r} in the payload does not match topic node {msg.node!r}"
        dead_letter(session, msg, reason, out)
        return None
    return payload


def accept_from_nodes(session: Session, ctx: HubContext, batch: list[Incoming], model: type[P],
                      out: Outcome) -> list[tuple[Incoming, P]]:
    """The valid events of a batch with their messages (the rest dead-lettered), their nodes
    marked as seen. The handler checks their claims (:func:`refuse` what fails), stores the
    rest and acks them with ``out.ack(batch[0].kind, ...)``: every message of a batch came on a
    topic of one kind, and that kind is what the node's outbox filed them under."""
    events = [(msg, e) for msg in batch if (e := accept(session, msg, model, out)) is not None]
    if events:
        now = batch[-1].received_at
        for node_id in sorted({e.node for _, e in events}):
            health.seen(session, node_id=node_id, now=now, notify=ctx.notify)
    return events


@dataclass(frozen=True)
class Refused:
    """A valid message the hub will not accept, and why."""

    msg: Incoming
    reason: str
    event_id: UUID | None = None
    """An event to ack all the same: the hub has decided (its payload is in dead letters), and
    sending it again would get the same answer."""
    claim: bool = True
    """The node claimed a box, counter, occurrence or camera that is not its own (a security
    alarm); ``False`` for a refusal that accuses nothing (a press time from a clock ahead)."""


def refuse(session: Session, ctx: HubContext, refused: list[Refused], out: Outcome) -> None:
    """Dead-letter each refused message with its reason and count it; ack the events among them
    (under the batch's kind); raise one ``claim_refused`` alarm per node for the claims."""
    if not refused:
        return
    acks: dict[str, list[UUID]] = defaultdict(list)
    claims: dict[str, list[Refused]] = defaultdict(list)
    for r in refused:
        dead_letter(session, r.msg, r.reason, out)
        metric = "thanthien_hub_claims_refused_total" if r.claim else "thanthien_hub_future_presses_total"
        out.count(metric, r.msg.kind)
        node = r.msg.node or ""
        if r.event_id is not None:
            acks[node].append(r.event_id)
        if r.claim:
            claims[node].append(r)
    if acks:
        out.ack(refused[0].msg.kind, acks)
    for node, items in sorted(claims.items()):
        alarms.claim_refused(session, node_id=node, kind=items[0].msg.kind, refused=len(items),
                             last_reason=items[-1].reason, now=items[-1].msg.received_at, notify=ctx.notify)
