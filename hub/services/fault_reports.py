"""Residents report a loudspeaker fault from the QR code on its pole, and IT answer.

The QR code opens ``/p/loa/{node}/{speaker}``: a resident picks what is wrong (broken, too
loud, too early, other), may add a line, and gets the ticket's code; ``/p/phan-anh/{code}``
shows its state and IT's answer. No login and no personal data: the ticket keeps the speaker,
its zone, the kind, the text and only a hash of the sending address, which limits one address to
``[public] reports_per_hour``. Each ticket is due within ``due_hours_broken`` (a broken speaker)
or ``due_hours_rules`` (loudness, hours: a question of the schedule) and is listed for IT
(``DEVICE_STAFF``) until they answer it. An answer is public; it is audited with who gave it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Device, FaultReport, Node, Zone
from thanthien.hub.roles import DEVICE_STAFF, Actor, require
from thanthien.hub.services import audit
from thanthien.hub.services.errors import Conflict, Invalid, NotFound, Throttled
from thanthien.hub.settings import PublicSection
from thanthien.hub.tenancy import Tenant, require_reach, visible_clause

KINDS: Final[dict[str, str]] = {
    "broken": "Loa hỏng, không nghe thấy",
    "too_loud": "Loa quá to",
    "too_early": "Phát quá sớm hoặc quá khuya",
    "other": "Vấn đề khác",
}
STATUSES: Final[dict[str, str]] = {"open": "Đang chờ xử lý", "answered": "Đã trả lời"}
MESSAGE_MAX: Final = 500
ANSWER_MAX: Final = 1000
CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
"""No 0/O or 1/I/L: a code is read off a phone and typed again."""
CODE_LEN: Final = 8


@dataclass(frozen=True)
class Pole:
    """What the report form shows of the speaker whose QR code was scanned."""

    node_id: str
    device_code: str
    name: str
    zone: str


def _text(value: str, limit: int, what: str) -> str:
    text = " ".join(value.split())
    if "\x00" in text:
        raise Invalid(f"{what} có ký tự không hợp lệ.")
    if len(text) > limit:
        raise Invalid(f"{what} dài quá {limit} ký tự.")
    return text


def _speaker(session: Session, node_id: str, device_code: str) -> tuple[Node, Device]:
    node = session.get(Node, node_id)
    device = session.scalar(select(Device).where(Device.node_id == node_id, Device.code == device_code,
                                                 Device.kind == "speaker"))
    if (node is None or device is None or node.retired_at is not None or device.retired_at is not None
            or node.commune_id is None):  # a node not yet placed in a commune is not in service
        raise NotFound("Không tìm thấy cụm loa này. Hãy quét lại mã QR trên cột loa.")
    return node, device


def pole(session: Session, *, node_id: str, device_code: str, viewer: Tenant | None = None) -> Pole:
    """A speaker in service as residents read it on its pole (public); ``viewer``: staff, who
    find only their communes' speakers."""
    node, device = _speaker(session, node_id, device_code)
    if viewer is not None:
        require_reach(viewer, node.commune_id, what="Cụm loa này")
    zone = session.get(Zone, device.zone_id) if device.zone_id is not None else None
    return Pole(node_id=node.id, device_code=device.code, name=device.name or node.name or node.id,
                zone=zone.name if zone else "")


def pole_of(session: Session, ticket: FaultReport) -> Pole:
    """The speaker a ticket is about, as it was named (even when retired since)."""
    node = session.get(Node, ticket.node_id)
    device = session.scalar(select(Device).where(Device.node_id == ticket.node_id,
                                                 Device.code == ticket.device_code))
    zone = session.get(Zone, ticket.zone_id) if ticket.zone_id is not None else None
    name = (device.name if device else "") or (node.name if node else "") or ticket.node_id
    return Pole(node_id=ticket.node_id, device_code=ticket.device_code, name=name,
                zone=zone.name if zone else "")


def sender_digest(address: str | None) -> str:
    return hashlib.sha256(f"fault-report:{address or 'unknown'}".encode()).hexdigest()


def _new_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LEN))
        if session.scalar(select(FaultReport.id).where(FaultReport.code == code)) is None:
            return code


def report(session: Session, *, node_id: str, device_code: str, kind: str, message: str,
           address: str | None, now: datetime, cfg: PublicSection) -> FaultReport:
    """A resident's report: a ticket with its due date. Refused (nothing stored) for an unknown
    or retired speaker, an unknown kind, a text too long, or an address over its hourly limit."""
    node, device = _speaker(session, node_id, device_code)
    if kind not in KINDS:
        raise Invalid("Hãy chọn một vấn đề trong danh sách.")
    text = _text(message, MESSAGE_MAX, "Nội dung")
    if kind == "other" and not text:
        raise Invalid("Hãy viết vài chữ về vấn đề khác.")
    sender = sender_digest(address)
    sent = session.scalar(select(func.count()).select_from(FaultReport).where(
        FaultReport.sender_sha256 == sender, FaultReport.created_at > now - timedelta(hours=1))) or 0
    if sent >= cfg.reports_per_hour:
        raise Throttled(f"Bạn đã gửi {sent} phản ánh trong một giờ qua. Vui lòng thử lại sau.",
                        retry_after_s=3600)
    hours = cfg.due_hours_broken if kind in ("broken", "other") else cfg.due_hours_rules
    row = FaultReport(code=_new_code(session), node_id=node_id, device_code=device.code,
                      zone_id=device.zone_id, kind=kind, message=text, created_at=now,
                      due_at=now + timedelta(hours=hours), status="open", answer="",
                      answered_by="", sender_sha256=sender, commune_id=node.commune_id)
    session.add(row)
    session.flush()
    return row


def public_ticket(session: Session, *, code: str) -> FaultReport:
    row = session.scalar(select(FaultReport).where(FaultReport.code == code.strip().upper()[:CODE_LEN]))
    if row is None:
        raise NotFound("Không có phản ánh mang mã này.")
    return row


def list_reports(session: Session, *, viewer: Actor, status: str | None = None,
                 limit: int = 200) -> list[FaultReport]:
    """Tickets for IT (of the communes ``viewer`` reaches): the open ones first, the soonest due first."""
    require(viewer, DEVICE_STAFF)
    query = select(FaultReport).where(visible_clause(viewer, FaultReport.commune_id))
    if status is not None:
        if status not in STATUSES:
            raise Invalid(f"Trạng thái {status!r} không có.")
        query = query.where(FaultReport.status == status)
    query = query.order_by((FaultReport.status == "answered"), FaultReport.due_at, FaultReport.id)
    return list(session.scalars(query.limit(limit)))


def open_count(session: Session, *, viewer: Tenant) -> int:
    return session.scalar(select(func.count()).select_from(FaultReport)
                          .where(FaultReport.status == "open",
                                 visible_clause(viewer, FaultReport.commune_id))) or 0


def answer(session: Session, *, actor: Actor, report_id: int, text: str, now: datetime) -> FaultReport:
    """IT's public answer to a ticket (once; audited)."""
    require(actor, DEVICE_STAFF)
    row = session.get(FaultReport, report_id)
    if row is None:
        raise NotFound(f"Không có phản ánh số {report_id}.")
    require_reach(actor, row.commune_id, what=f"Phản ánh số {report_id}")
    if row.status == "answered":
        raise Conflict("Phản ánh này đã được trả lời.")
    reply = _text(text, ANSWER_MAX, "Câu trả lời")
    if not reply:
        raise Invalid("Hãy viết câu trả lời cho người dân.")
    row.status, row.answer, row.answered_at, row.answered_by = "answered", reply, now, actor.username[:64]
    audit.record(session, actor=actor, action="fault_report.answer", subject=f"fault_report:{row.code}",
                 at=now, details={"node": row.node_id, "kind": row.kind, "late": now > row.due_at},
                 commune_id=row.commune_id)
    session.flush()
    return row
