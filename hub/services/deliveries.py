"""Playback reports from the speaker nodes and the delivery report of each occurrence.

Every ``PlaybackEvent`` is stored once (unique node + event id, like ratings) and acked
whether it was new or a repeat. It moves the node's delivery row of its occurrence:
``started`` marks it playing (unless a final report came first), ``finished``,
``interrupted``, ``failed`` and ``missed`` are final. The occurrence's deadline is its end
plus ``report_grace_s``: then the hub counts every node that has not reported as missed
(``Không nhận được báo cáo``) and raises ``broadcast_missed`` when not every node played.
Reports that arrive later (a node that was offline) still fill the report in, and the alarm
clears itself once every node has played.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select, true, tuple_, update
from sqlalchemy.orm import Session

from thanthien.hub.db import bulk
from thanthien.hub.db.models import Delivery, Node, Occurrence, PlaybackReport
from thanthien.hub.services import alarms, proof
from thanthien.hub.services.errors import NotFound
from thanthien.hub.tenancy import Tenant
from thanthien.protocol.payloads import PlaybackEvent

log = logging.getLogger(__name__)

FINAL = ("finished", "interrupted", "failed", "missed")
PLAYED = ("started", "finished", "interrupted")
NO_REPORT = "Không nhận được báo cáo từ cụm loa"
ALARM_KIND = "broadcast_missed"
STATUS_LABELS = {
    "pending": "chờ phát",
    "started": "đang phát",
    "finished": "đã phát",
    "interrupted": "bị ngắt",
    "failed": "lỗi",
    "missed": "bỏ lỡ",
}


SOURCE_LABELS = {"file": "tệp âm thanh", "stream": "tiếp sóng", "fallback": "tệp dự phòng",
                 "silence": "im lặng", "live": "trực tiếp"}


def describe_sources(d: Delivery) -> str:
    """What really went out, in order: ``tiếp sóng 12 s → tệp dự phòng 48 s (luồng mất tín hiệu)``."""
    parts = []
    for span in d.sources or []:
        kind = str(span.get("source", ""))
        text = f"{SOURCE_LABELS.get(kind, kind)} {float(span.get('seconds', 0)):.0f} s"
        if span.get("reason"):
            text += f" ({span['reason']})"
        parts.append(text)
    return " → ".join(parts)


@dataclass(slots=True)
class DeliveryRow:
    """A delivery as the ingest moves it: plain values read in one query for a batch and written
    back by one statement (a province occurrence has thousands of deliveries, and ORM objects
    cost several times as much to load, track and flush)."""

    id: int
    occurrence_id: str
    node_id: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    reported_at: datetime | None
    detail: str
    stored_status: str = ""
    """The status as stored, before this batch (the alarm counts what changed in memory)."""
    proof: str | None = None
    proof_detail: str = ""
    levels: dict[str, Any] | None = None
    sources: list[dict[str, Any]] | None = None
    extra: set[str] = field(default_factory=set)
    """Columns beyond the report's own to write (proof of play, sources) when set."""


@dataclass
class PlaybackResult:
    acks: dict[str, list[UUID]] = field(default_factory=lambda: defaultdict(list))
    stored: int = 0
    duplicates: int = 0
    occurrences: set[str] = field(default_factory=set)
    judged: list[tuple[DeliveryRow, proof.Judgement]] = field(default_factory=list)
    """Deliveries whose proof of play was judged in this batch, in report order."""
    moved: list[DeliveryRow] = field(default_factory=list)
    """The deliveries this batch changed, to write with :func:`write_rows` (in id order)."""


_ROWS = "thanthien.deliveries.rows"
_COLUMNS = (Delivery.id, Delivery.occurrence_id, Delivery.node_id, Delivery.status, Delivery.started_at,
            Delivery.ended_at, Delivery.reported_at, Delivery.detail)


def _rows(session: Session, events: Sequence[PlaybackEvent]) -> dict[tuple[str, str], DeliveryRow]:
    """(occurrence id, node) -> its delivery, for the events' pairs: one query for the pairs
    this session has not read yet (the claim check reads them, the store finds them again)."""
    cache: dict[tuple[str, str], DeliveryRow | None] = session.info.setdefault(_ROWS, {})
    wanted = {(e.occurrence_id, e.node) for e in events}
    missing = sorted(wanted - cache.keys())
    for i in range(0, len(missing), 2000):
        chunk = missing[i:i + 2000]
        for pair in chunk:
            cache[pair] = None
        for values in session.execute(select(*_COLUMNS).where(
                tuple_(Delivery.occurrence_id, Delivery.node_id).in_(chunk))):
            row = DeliveryRow(*values)
            row.stored_status = row.status
            cache[(row.occurrence_id, row.node_id)] = row
    return {pair: row for pair in wanted if (row := cache[pair]) is not None}


def check_claims(session: Session, *, events: Sequence[PlaybackEvent]) -> list[str | None]:
    """For each event, why it is refused (``None``: accepted): a node reports only on an
    occurrence that targeted it (it has a delivery row), in one query for the batch. A report
    on any other occurrence (another village's, or one the hub never made) says nothing true
    about this node."""
    targeted = _rows(session, events)
    return [None if (e.occurrence_id, e.node) in targeted else
            f"occurrence {e.occurrence_id!r} did not target node {e.node!r} (no delivery for it)"
            for e in events]


def store_playback(session: Session, *, events: list[PlaybackEvent], now: datetime,
                   proof_cfg: proof.ProofSettings | None = None) -> PlaybackResult:
    """Store the reports not stored yet and move their deliveries in memory; the claims were
    checked before (:func:`check_claims`). One statement stores the new reports and says which
    they were; the rows were read by the claim check already. A final report's levels are
    judged (proof of play) and its sources kept. The caller writes ``result.moved``
    (:func:`write_rows`)."""
    result = PlaybackResult()
    by_node: dict[str, dict[UUID, PlaybackEvent]] = defaultdict(dict)
    for e in events:
        by_node[e.node].setdefault(e.event_id, e)
    result.acks = defaultdict(list, {node: list(batch) for node, batch in by_node.items()})
    new = bulk.insert_new(session, PlaybackReport.__table__, [  # type: ignore[arg-type]
        {"node_id": e.node, "event_id": eid, "occurrence_id": e.occurrence_id, "status": e.status, "at": e.at,
         "received_at": now, "detail": e.detail}
        for batch in by_node.values() for eid, e in batch.items()], unique=("node_id", "event_id"))
    fresh = [e for node, batch in by_node.items() for eid, e in batch.items() if (node, eid) in new]
    result.duplicates = sum(len(batch) for batch in by_node.values()) - len(fresh)
    if not fresh:
        return result
    result.stored = len(fresh)
    rows = _rows(session, fresh)
    moved: dict[int, DeliveryRow] = {}
    for e in sorted(fresh, key=lambda e: (e.at, e.status != "started")):
        d = rows.get((e.occurrence_id, e.node))
        if d is None:
            log.info(
                "playback report for %s from %s, which it was not sent (kept, not counted)",
                e.occurrence_id,
                e.node,
            )
            continue
        _apply(d, e, now)
        if e.levels is not None and e.status in FINAL:
            result.judged.append((d, proof.apply(d, e.levels, proof_cfg or proof.ProofSettings())))
            d.extra.update(("proof", "proof_detail", "levels"))
        if e.sources is not None and e.status in FINAL:
            d.sources = [span.model_dump(mode="json") for span in e.sources]
            d.extra.add("sources")
        moved[d.id] = d
        result.occurrences.add(e.occurrence_id)
    result.moved = [moved[k] for k in sorted(moved)]
    return result


_BASE = ("status", "started_at", "ended_at", "reported_at", "detail")
_KEPT_FINAL = (f"status IN ({', '.join(repr(f) for f in FINAL)}) AND reported_at IS NOT NULL "
               "AND :status = 'started'")
_FORWARD = {"status": f"CASE WHEN {_KEPT_FINAL} THEN status ELSE :status END",
            "detail": f"CASE WHEN {_KEPT_FINAL} THEN detail ELSE :detail END",
            "started_at": "COALESCE(:started_at, started_at)", "ended_at": "COALESCE(:ended_at, ended_at)"}
"""How a moved delivery is written (:func:`_apply`'s rule, on the row as stored when the UPDATE
runs): ingest workers sharing the subscription each get some of a node's reports, so one may
write a ``started`` read before another committed the node's ``finished``: a reported final
status is kept, and a time another report set is not erased."""


def write_rows(session: Session, rows: Sequence[DeliveryRow]) -> None:
    """Write moved deliveries, in id order: the report's own columns through the driver (never
    undoing another worker's report, ``_FORWARD``), and proof of play or sources (JSON) through
    SQLAlchemy where a report carried them."""
    table = Delivery.__table__
    ordered = sorted(rows, key=lambda r: r.id)
    bulk.update_by_id(session, table, [{"id": r.id, **{c: getattr(r, c) for c in _BASE}}  # type: ignore[arg-type]
                                       for r in ordered], sets=_FORWARD)
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in ordered:
        if row.extra:
            columns = tuple(sorted(row.extra))
            shapes[columns].append({"d_id": row.id, **{f"d_{c}": getattr(row, c) for c in columns}})
        row.stored_status = row.status
    for columns, params in shapes.items():
        statement = update(table).where(table.c.id == bindparam("d_id")).values(
            {c: bindparam(f"d_{c}", type_=table.c[c].type) for c in columns})
        session.execute(statement, params)


def _apply(d: DeliveryRow, e: PlaybackEvent, now: datetime) -> None:
    reported_final = d.reported_at is not None and d.status in FINAL
    if e.status == "started":
        d.started_at = e.at
        if not reported_final:
            d.status, d.detail = "started", e.detail
    else:
        d.status, d.ended_at, d.detail = e.status, e.at, e.detail
    d.reported_at = now


def deadline(o: Occurrence, grace_s: float) -> datetime:
    return o.start_at + timedelta(seconds=o.duration_s + grace_s)


def check_due(
    session: Session,
    *,
    now: datetime,
    grace_s: float,
    notify: bool,
    tz: ZoneInfo,
    broadcast_id: int | None = None,
) -> list[str]:
    """Occurrences past their deadline and not yet checked: silent nodes count as missed, the
    alarm is raised when not every node played. Returns the ids checked."""
    q = select(Occurrence).where(
        Occurrence.checked_at.is_(None), Occurrence.start_at <= now - timedelta(seconds=grace_s)
    )
    if broadcast_id is not None:
        q = q.where(Occurrence.broadcast_id == broadcast_id)
    checked = []
    for o in session.scalars(q.order_by(Occurrence.start_at)):
        if deadline(o, grace_s) > now:
            continue
        for d in session.scalars(
            select(Delivery).where(Delivery.occurrence_id == o.id, Delivery.status == "pending")
        ):
            d.status, d.detail = "missed", NO_REPORT
        o.checked_at = now
        evaluate_alarm(session, occurrence=o, now=now, notify=notify, tz=tz)
        checked.append(o.id)
    session.flush()
    return checked


def evaluate_alarm(
    session: Session, *, occurrence: Occurrence, now: datetime, notify: bool, tz: ZoneInfo
) -> None:
    """:func:`evaluate_alarms` of one occurrence, its deliveries as the session holds them."""
    evaluate_alarms(session, occurrences=[occurrence], now=now, notify=notify, tz=tz)


def evaluate_alarms(
    session: Session, *, occurrences: Sequence[Occurrence], now: datetime, notify: bool, tz: ZoneInfo,
    moved: Sequence[DeliveryRow] = (),
) -> None:
    """Raise (or update) each checked occurrence's alarm while a node has not played it, clear
    it once every node has. Three queries whatever the number of occurrences and deliveries (a
    province occurrence has thousands, and a batch of playback reports re-evaluates each one it
    touches): the counts, the first silent nodes, the alarms. ``moved`` are deliveries changed
    in memory and not written yet (the ingest writes them at the end of its batch), counted as
    they are in memory."""
    checked = {o.id: o for o in occurrences if o.checked_at is not None}
    if not checked:
        return
    mine: dict[str, list[DeliveryRow]] = defaultdict(list)
    for r in moved:
        if r.occurrence_id in checked and r.status != r.stored_status:
            mine[r.occurrence_id].append(r)
    of_them = Delivery.occurrence_id.in_(sorted(checked))
    not_played = Delivery.status.not_in(PLAYED)
    counts = {oid: [total, bad] for oid, total, bad in session.execute(
        select(Delivery.occurrence_id, func.count(), func.count().filter(not_played))
        .where(of_them).group_by(Delivery.occurrence_id))}
    for oid, rows in mine.items():
        counts[oid][1] += sum((r.status not in PLAYED) - (r.stored_status not in PLAYED) for r in rows)
    # the first 100 silent nodes of each by node id, and as many more as rows moved in memory
    # (they may have played since)
    rank = (func.row_number().over(partition_by=Delivery.occurrence_id, order_by=Delivery.node_id)
            .label("rank"))
    silent = select(Delivery.occurrence_id, Delivery.node_id, rank).where(of_them, not_played).subquery()
    first: dict[str, set[str]] = defaultdict(set)
    reach = 100 + max((len(rows) for rows in mine.values()), default=0)
    for oid, node_id in session.execute(select(silent.c.occurrence_id, silent.c.node_id)
                                        .where(silent.c.rank <= reach)):
        first[oid].add(node_id)
    alarms.read_active(session, subjects=[oid[:128] for oid in checked])
    for oid in sorted(checked):
        occurrence, (total, bad_count) = checked[oid], counts.get(oid, [0, 0])
        stored = first[oid]
        for r in mine.get(oid, ()):
            (stored.discard if r.status in PLAYED else stored.add)(r.node_id)
        bad = sorted(stored)[:100]
        if not bad_count:
            alarms.clear_alarm(session, kind=ALARM_KIND, subject=oid[:128], now=now, notify=notify)
            continue
        local = occurrence.start_at.astimezone(tz)
        message = (
            f"Bản tin “{occurrence.title}” lúc {local:%H:%M %d/%m/%Y}: {bad_count}/{total} cụm loa "
            f"không phát ({', '.join(bad[:10])}{'…' if bad_count > 10 else ''})"
        )
        alarms.raise_alarm(
            session,
            kind=ALARM_KIND,
            subject=oid[:128],
            severity="critical" if occurrence.priority == "emergency" else "major",
            message=message[:500],
            now=now,
            notify=notify,
            details={"occurrence_id": oid, "broadcast_id": occurrence.broadcast_id, "nodes": bad},
        )


def refresh_alarms(
    session: Session, *, occurrence_ids: set[str], now: datetime, notify: bool, tz: ZoneInfo,
    judged: Sequence[tuple[DeliveryRow, proof.Judgement]] = (), moved: Sequence[DeliveryRow] = (),
) -> None:
    """After late reports: the alarm of a checked occurrence follows its deliveries (``moved``:
    those changed in memory, not written yet); each node's ``speaker_silent`` alarm follows its
    latest judged playback."""
    occurrences = {o.id: o for o in session.scalars(
        select(Occurrence).where(Occurrence.id.in_(sorted(occurrence_ids))))} if occurrence_ids else {}
    evaluate_alarms(session, occurrences=list(occurrences.values()), now=now, notify=notify, tz=tz,
                    moved=moved)
    latest: dict[str, tuple[DeliveryRow, proof.Judgement]] = {}
    for d, j in judged:
        prev = latest.get(d.node_id)
        if prev is None or (d.ended_at or now) >= (prev[0].ended_at or now):
            latest[d.node_id] = (d, j)
    for node_id, (d, j) in sorted(latest.items()):
        o = occurrences.get(d.occurrence_id) or session.get(Occurrence, d.occurrence_id)
        proof.follow_alarm(session, node_id=node_id, title=o.title if o else d.occurrence_id,
                           judgement=j, now=now, notify=notify)


# -- reports -------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryReport:
    occurrence: Occurrence
    deliveries: list[Delivery]
    counts: dict[str, int]
    proof_counts: dict[str, int]
    """Deliveries by proof of play verdict (ok, silent, unheard; unchecked: no levels)."""
    start_spread_s: float | None
    first_start: datetime | None
    last_start: datetime | None
    max_start_error_s: float | None


def _seen_nodes(viewer: Tenant) -> Any:
    """The deliveries ``viewer`` reads: to their commune's nodes (a province viewer: all)."""
    mine = getattr(viewer, "commune_id", None)
    if mine is None:
        return true()
    return Delivery.node_id.in_(select(Node.id).where(Node.commune_id == mine))


def report(session: Session, *, viewer: Tenant, occurrence_id: str) -> DeliveryReport:
    """An occurrence's report, if ``viewer`` reads its broadcast, of the speakers they reach (a
    province broadcast's report to a commune user: their commune's speakers)."""
    from thanthien.hub.services.broadcasts import get_broadcast

    o = session.get(Occurrence, occurrence_id)
    if o is None:
        raise NotFound(f"Không có lần phát {occurrence_id}")
    try:
        get_broadcast(session, viewer=viewer, broadcast_id=o.broadcast_id)
    except NotFound:
        raise NotFound(f"Không có lần phát {occurrence_id}") from None
    return _report(
        o,
        list(
            session.scalars(select(Delivery).where(Delivery.occurrence_id == o.id, _seen_nodes(viewer))
                            .order_by(Delivery.node_id))
        ),
    )


def _report(o: Occurrence, rows: list[Delivery]) -> DeliveryReport:
    counts = {s: 0 for s in STATUS_LABELS}
    for d in rows:
        counts[d.status] = counts.get(d.status, 0) + 1
    starts = sorted(d.started_at for d in rows if d.started_at is not None)
    spread = (starts[-1] - starts[0]).total_seconds() if starts else None
    error = max((abs((s - o.start_at).total_seconds()) for s in starts), default=None)
    proofs = {"ok": 0, "silent": 0, "unheard": 0, "unchecked": 0}
    for d in rows:
        if d.status in ("finished", "interrupted"):
            proofs[d.proof or "unchecked"] = proofs.get(d.proof or "unchecked", 0) + 1
    return DeliveryReport(
        o, rows, counts, proofs, spread, starts[0] if starts else None, starts[-1] if starts else None, error
    )


def broadcast_reports(session: Session, *, viewer: Tenant, broadcast_id: int,
                      limit: int = 100) -> list[DeliveryReport]:
    """The reports of a broadcast ``viewer`` reads, newest first (of the speakers they reach)."""
    from thanthien.hub.services.broadcasts import get_broadcast

    get_broadcast(session, viewer=viewer, broadcast_id=broadcast_id)
    occs = list(
        session.scalars(
            select(Occurrence)
            .where(Occurrence.broadcast_id == broadcast_id)
            .order_by(Occurrence.start_at.desc())
            .limit(limit)
        )
    )
    if not occs:
        return []
    rows: dict[str, list[Delivery]] = defaultdict(list)
    for d in session.scalars(
        select(Delivery).where(Delivery.occurrence_id.in_([o.id for o in occs]), _seen_nodes(viewer))
        .order_by(Delivery.node_id)
    ):
        rows[d.occurrence_id].append(d)
    return [_report(o, rows[o.id]) for o in occs]


def next_deadline(session: Session, *, broadcast_id: int, grace_s: float) -> datetime | None:
    """When the next unchecked occurrence of the broadcast is due for checking."""
    occs = session.scalars(
        select(Occurrence).where(Occurrence.broadcast_id == broadcast_id, Occurrence.checked_at.is_(None))
    )
    return min((deadline(o, grace_s) for o in occs), default=None)
