"""Alarms: raised once while a condition lasts, reminded, acknowledged, cleared by themselves.

An active alarm is unique per (kind, subject) (a partial unique index enforces it). Every
change is also written to ``alarm_notifications`` in the same transaction when a webhook is
configured, so delivery (services/webhook.py) survives restarts and retries on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import case, func, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Alarm, AlarmNotification, Broadcast, Counter, Node, Occurrence, Rating
from thanthien.hub.roles import ADMIN, ALARM_HANDLERS, IT, LEADER, Actor
from thanthien.hub.services.errors import Conflict, Forbidden, NotFound
from thanthien.hub.tenancy import Tenant, require_reach, visible_clause

log = logging.getLogger(__name__)

Severity = Literal["info", "warning", "major", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "major", "critical")
Audience = Literal["it", "leader"]

# kind -> audience: device problems go to IT staff, rating spikes to the leaders.
KINDS: dict[str, Audience] = {
    "node_offline": IT,
    "node_unregistered": IT,
    "outbox_backlog": IT,
    "disk_full": IT,
    "high_temperature": IT,
    "clock_unsynced": IT,
    "camera_down": IT,
    "claim_refused": IT,
    "speaker_silent": IT,
    "negative_spike": LEADER,
}


def audience_of(actor: Actor) -> Audience | None:
    """The alarms a user handles: admins every alarm (``None``), IT staff the device alarms,
    leaders the rating alarms; other roles none (refused)."""
    if actor.role == ADMIN:
        return None
    if actor.role not in ALARM_HANDLERS:
        raise Forbidden(f"Vai trò {actor.role!r} không xem hay xác nhận cảnh báo")
    return actor.role  # type: ignore[return-value]


@dataclass(frozen=True)
class Change:
    """What a raise/clear did, for the caller's logs and metrics."""

    alarm: Alarm
    event: Literal["raised", "updated", "reminder", "acknowledged", "cleared"]


def alarm_body(alarm: Alarm, event: str) -> dict[str, Any]:
    return {
        "event": event,
        "alarm": {
            "id": alarm.id, "kind": alarm.kind, "subject": alarm.subject, "severity": alarm.severity,
            "audience": alarm.audience, "message": alarm.message, "details": alarm.details,
            "raised_at": alarm.raised_at.isoformat(),
            "acknowledged_at": alarm.acknowledged_at.isoformat() if alarm.acknowledged_at else None,
            "acknowledged_by": alarm.acknowledged_by,
            "cleared_at": alarm.cleared_at.isoformat() if alarm.cleared_at else None,
            "reminders": alarm.reminders,
        },
    }


def _notify(session: Session, alarm: Alarm, event: str, now: datetime, notify: bool) -> None:
    if not notify:
        return
    if alarm.id is None:
        if _ACTIVE in session.info:  # an ingest batch: it writes its rows at its end, not now
            session.info.setdefault(_DEFERRED, []).append((alarm, event, alarm_body(alarm, event), now))
            return
        session.flush()  # the alarm's id
    _add_notification(session, alarm, event, alarm_body(alarm, event), now)


def _add_notification(session: Session, alarm: Alarm, event: str, body: dict[str, Any],
                      now: datetime) -> None:
    body["alarm"]["id"] = alarm.id
    session.add(AlarmNotification(alarm_id=alarm.id, event=event, body=body, created_at=now, attempts=0,
                                  next_attempt_at=now, delivered=False, failed=False, last_error=""))


_DEFERRED = "thanthien.deferred_alarm_notifications"


@sa_event.listens_for(Session, "after_flush_postexec")
def _deferred_notifications(session: Session, _flush_context: Any) -> None:
    """The notifications of alarms an ingest batch raised, once the flush gave them their ids
    (the commit flushes again for them)."""
    waiting = session.info.get(_DEFERRED)
    if not waiting:
        return
    session.info[_DEFERRED] = [item for item in waiting if item[0].id is None]
    for alarm, event, body, now in waiting:
        if alarm.id is not None:
            _add_notification(session, alarm, event, body, now)


_ACTIVE = "thanthien.active_alarms"
"""``session.info`` key: the active alarms read by :func:`read_active` (subjects read, and
(kind, subject) -> alarm), which :func:`active_alarm`, :func:`raise_alarm` and
:func:`clear_alarm` answer from and keep up to date."""


@dataclass
class _Active:
    subjects: set[str]
    alarms: dict[tuple[str, str], Alarm]


def read_active(session: Session, *, subjects: Iterable[str]) -> None:
    """Read the active alarms of these subjects (of every kind) in one query and keep them for
    this session: later lookups of those subjects (raise, clear, the spike rule, telemetry
    thresholds) answer from memory. The ingest worker does this once per batch for its nodes
    and counters. Subjects already read are not read again."""
    cache: _Active = session.info.setdefault(_ACTIVE, _Active(set(), {}))
    missing = sorted(set(subjects) - cache.subjects)
    if not missing:
        return
    for alarm in session.scalars(select(Alarm).where(Alarm.cleared_at.is_(None), Alarm.subject.in_(missing))):
        cache.alarms[(alarm.kind, alarm.subject)] = alarm
    cache.subjects.update(missing)


def active_alarm(session: Session, *, kind: str, subject: str) -> Alarm | None:
    cache: _Active | None = session.info.get(_ACTIVE)
    if cache is not None and subject in cache.subjects:
        alarm = cache.alarms.get((kind, subject))
        return alarm if alarm is not None and alarm.cleared_at is None else None
    return session.scalar(select(Alarm).where(Alarm.kind == kind, Alarm.subject == subject,
                                              Alarm.cleared_at.is_(None)))


def _remember(session: Session, alarm: Alarm) -> None:
    cache: _Active | None = session.info.get(_ACTIVE)
    if cache is not None and alarm.subject in cache.subjects:
        cache.alarms[(alarm.kind, alarm.subject)] = alarm


_DERIVE: Any = object()


def subject_commune(session: Session, *, kind: str, subject: str,
                    details: dict[str, Any] | None = None) -> int | None:
    """The commune an alarm's subject belongs to: a counter's (``negative_spike``), the
    broadcast's of an occurrence (``broadcast_missed``; for a province broadcast, the commune of
    the speakers that missed it when they are all of one), the node's of ``<node>`` or
    ``<node>/<camera>`` (every other kind). ``None``: the hub's own, or a node not placed in a
    commune yet (province staff only)."""
    if kind == "negative_spike":
        return session.scalar(select(Counter.commune_id).where(Counter.code == subject))
    if kind == "broadcast_missed":
        commune = session.scalar(select(Broadcast.commune_id)
                                 .join(Occurrence, Occurrence.broadcast_id == Broadcast.id)
                                 .where(Occurrence.id == subject))
        if commune is None and (details or {}).get("nodes"):
            missed = set(session.scalars(select(Node.commune_id).where(Node.id.in_(details["nodes"]))))
            commune = missed.pop() if len(missed) == 1 else None
        return commune
    node = session.get(Node, subject.split("/", 1)[0])
    return node.commune_id if node is not None else None


def raise_alarm(session: Session, *, kind: str, subject: str, severity: Severity, message: str,
                now: datetime, notify: bool, details: dict[str, Any] | None = None,
                commune_id: int | None = _DERIVE) -> Change:
    """Raise the alarm unless it is already active (then only its text and severity follow).
    A new alarm belongs to the commune of its subject (:func:`subject_commune`, unless the
    caller knows it: ``commune_id``)."""
    alarm = active_alarm(session, kind=kind, subject=subject)
    if alarm is not None:
        if alarm.severity != severity or alarm.message != message:
            escalated = SEVERITIES.index(severity) > SEVERITIES.index(alarm.severity)  # type: ignore[arg-type]
            alarm.severity, alarm.message, alarm.details = severity, message, details or {}
            if escalated:
                _notify(session, alarm, "updated", now, notify)
        return Change(alarm, "updated")
    if commune_id is _DERIVE:
        commune_id = subject_commune(session, kind=kind, subject=subject, details=details)
    alarm = Alarm(kind=kind, subject=subject, severity=severity, audience=KINDS.get(kind, "it"),
                  message=message, details=details or {}, raised_at=now, notified_at=now, reminders=0,
                  commune_id=commune_id)
    session.add(alarm)
    _remember(session, alarm)
    _notify(session, alarm, "raised", now, notify)
    log.warning("alarm raised: %s %s (%s): %s", kind, subject, severity, message)
    return Change(alarm, "raised")


def clear_alarm(session: Session, *, kind: str, subject: str, now: datetime, notify: bool) -> Change | None:
    alarm = active_alarm(session, kind=kind, subject=subject)
    if alarm is None:
        return None
    alarm.cleared_at = now
    _notify(session, alarm, "cleared", now, notify)
    log.info("alarm cleared: %s %s", kind, subject)
    return Change(alarm, "cleared")


def acknowledge_alarm(session: Session, *, alarm_id: int, actor: Actor, now: datetime,
                      notify: bool) -> Alarm:
    """Xác nhận: stops the reminders. Only the alarm's audience (or an admin) of the alarm's
    commune (or the province) may; another commune's alarm is not found."""
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFound("Cảnh báo không còn tồn tại")
    require_reach(actor, alarm.commune_id, what="Cảnh báo")
    audience = audience_of(actor)
    if audience not in (None, alarm.audience):
        raise Forbidden(f"Cảnh báo này dành cho {alarm.audience}; vai trò {actor.role!r} không xác nhận được")
    if alarm.acknowledged_at is not None:
        raise Conflict(f"Cảnh báo này đã được {alarm.acknowledged_by} xác nhận trước đó")
    alarm.acknowledged_at = now
    alarm.acknowledged_by = actor.username
    _notify(session, alarm, "acknowledged", now, notify)
    return alarm


def send_reminders(session: Session, *, now: datetime, remind_s: float, notify: bool) -> list[Alarm]:
    """Active, unacknowledged alarms not notified for ``remind_s`` are reminded once more."""
    due = list(session.scalars(select(Alarm).where(
        Alarm.cleared_at.is_(None), Alarm.acknowledged_at.is_(None),
        Alarm.notified_at <= now - timedelta(seconds=remind_s))))
    for alarm in due:
        alarm.reminders += 1
        alarm.notified_at = now
        _notify(session, alarm, "reminder", now, notify)
        log.warning("alarm reminder %d: %s %s", alarm.reminders, alarm.kind, alarm.subject)
    return due


def alarms_for(session: Session, *, viewer: Actor, active: bool | None = None, subject: str | None = None,
               limit: int = 200, offset: int = 0) -> list[Alarm]:
    """The alarms this user handles (see :func:`audience_of`), of the communes they reach."""
    return list_alarms(session, viewer=viewer, active=active, audience=audience_of(viewer), subject=subject,
                       limit=limit, offset=offset)


def list_alarms(session: Session, *, viewer: Tenant, active: bool | None = None, audience: str | None = None,
                subject: str | None = None, limit: int = 200, offset: int = 0) -> list[Alarm]:
    """Alarms newest first, of the communes ``viewer`` reaches (the hub's own: the province's)."""
    query = select(Alarm).where(visible_clause(viewer, Alarm.commune_id)).order_by(Alarm.raised_at.desc(),
                                                                                  Alarm.id.desc())
    if active is True:
        query = query.where(Alarm.cleared_at.is_(None))
    elif active is False:
        query = query.where(Alarm.cleared_at.is_not(None))
    if audience is not None:
        query = query.where(Alarm.audience == audience)
    if subject is not None:
        query = query.where(Alarm.subject == subject)
    return list(session.scalars(query.limit(limit).offset(offset)))


def active_counts(session: Session, *, viewer: Tenant) -> dict[str, int]:
    """Active alarms per severity, of the communes ``viewer`` reaches."""
    rows = session.execute(select(Alarm.severity, func.count())
                           .where(Alarm.cleared_at.is_(None), visible_clause(viewer, Alarm.commune_id))
                           .group_by(Alarm.severity)).all()
    return {severity: int(n) for severity, n in rows}


# -- a node speaking for what is not its own ------------------------------------------------
CLAIM_WHAT = {"rating": "đánh giá cho hộp hoặc quầy không thuộc thiết bị",
              "playback": "báo cáo phát bản tin không gửi tới thiết bị",
              "camera_health": "tình trạng camera không khai báo trên thiết bị"}
"""What each refused message kind claimed, as IT staff read it in the alarm."""


def claim_refused(session: Session, *, node_id: str, kind: str, refused: int, last_reason: str,
                  now: datetime, notify: bool) -> Change:
    """The security alarm for a node whose messages of ``kind`` claimed a box, counter,
    occurrence or camera the registry does not give it: one per node, raised once (it stays
    active: a forged claim is an event, not a condition that ends), its text counting the
    refusals per kind. The messages themselves are in dead letters with the reason."""
    subject = node_id[:128]
    alarm = active_alarm(session, kind="claim_refused", subject=subject)
    counts: dict[str, int] = dict((alarm.details or {}).get("refused", {})) if alarm is not None else {}
    last: dict[str, str] = dict((alarm.details or {}).get("last_reason", {})) if alarm is not None else {}
    counts[kind] = counts.get(kind, 0) + refused
    last[kind] = last_reason[:300]
    parts = "; ".join(f"{n} {CLAIM_WHAT.get(k, k)}" for k, n in sorted(counts.items()))
    message = f"Thiết bị {node_id} gửi dữ liệu không thuộc về mình, đã bị từ chối: {parts}"
    return raise_alarm(session, kind="claim_refused", subject=subject, severity="major",
                       message=message[:500], now=now, notify=notify,
                       details={"node": node_id, "refused": counts, "last_reason": last,
                                "last_at": now.isoformat()})


# -- the negative-rating spike rule --------------------------------------------------------
@dataclass(frozen=True)
class SpikeRule:
    window_min: float = 15.0
    min_presses: int = 4
    ratio: float = 0.5


def evaluate_spike(session: Session, *, counter: str, now: datetime, rule: SpikeRule,
                   notify: bool) -> Change | None:
    """Raise or clear the counter's spike alarm from the presses of the last window: it fires
    when at least ``min_presses`` were made and ``ratio`` of them or more were the two lowest
    levels (Bình thường, Không hài lòng)."""
    since = now - timedelta(minutes=rule.window_min)
    total, negative = session.execute(
        select(func.count(), func.coalesce(func.sum(case((Rating.score <= 2, 1), else_=0)), 0))
        .where(Rating.counter_code == counter, Rating.pressed_at > since, Rating.pressed_at <= now)
    ).one()
    return _spike_verdict(session, counter=counter, counts=(int(total), int(negative)), now=now, rule=rule,
                          notify=notify)


def _spike_verdict(session: Session, *, counter: str, counts: tuple[int, int], now: datetime, rule: SpikeRule,
                   notify: bool) -> Change | None:
    total, negative = counts
    if total >= rule.min_presses and negative >= rule.ratio * total:
        pct = round(100 * negative / total)
        message = (f"Quầy {counter}: {negative}/{total} lượt đánh giá trong {rule.window_min:g} phút qua "
                   f"là Bình thường hoặc Không hài lòng ({pct}%)")
        return raise_alarm(session, kind="negative_spike", subject=counter, severity="major",
                           message=message, now=now, notify=notify,
                           details={"counter": counter, "presses": total, "negative": negative})
    return clear_alarm(session, kind="negative_spike", subject=counter, now=now, notify=notify)


def evaluate_spikes(session: Session, *, counters: Iterable[str], now: datetime, rule: SpikeRule,
                    notify: bool) -> dict[str, Change | None]:
    """:func:`evaluate_spike` for several counters: their presses of the window counted in one
    query, their alarms read in one (the ingest worker does this once per batch, for the
    counters of the ratings it stored)."""
    codes = sorted(set(counters))
    if not codes:
        return {}
    since = now - timedelta(minutes=rule.window_min)
    negatives = func.coalesce(func.sum(case((Rating.score <= 2, 1), else_=0)), 0)
    rows = session.execute(
        select(Rating.counter_code, func.count(), negatives)
        .where(Rating.counter_code.in_(codes), Rating.pressed_at > since, Rating.pressed_at <= now)
        .group_by(Rating.counter_code)).all()
    counts = {code: (int(total), int(negative)) for code, total, negative in rows}
    read_active(session, subjects=codes)
    return {code: _spike_verdict(session, counter=code, counts=counts.get(code, (0, 0)), now=now, rule=rule,
                                 notify=notify) for code in codes}


def spike_subjects(session: Session) -> list[str]:
    """Counters whose spike alarm is active (re-evaluated as the window slides)."""
    return list(session.scalars(select(Alarm.subject).where(Alarm.kind == "negative_spike",
                                                            Alarm.cleared_at.is_(None))))
