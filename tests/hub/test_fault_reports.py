"""Residents' fault reports from the QR code on a speaker pole, and IT's answers (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from thanthien.hub.db.models import AuditEntry, Device, FaultReport
from thanthien.hub.roles import SYSTEM, ActingUser
from thanthien.hub.services import fault_reports, registry
from thanthien.hub.services.errors import Conflict, Forbidden, Invalid, NotFound, Throttled
from thanthien.hub.settings import PublicSection

pytestmark = pytest.mark.postgres
CFG = PublicSection(reports_per_hour=3, due_hours_broken=72, due_hours_rules=168)
IT = ActingUser("kythuat", "it", 3)
OFFICER = ActingUser("canbo", "officer", 4)


@pytest.fixture
def pole(db):
    with db.session() as s:
        registry.create_zone(s, actor=SYSTEM, code="ban-hon", name="Bản Hón")
        registry.register_node(s, actor=SYSTEM, node_id="loa-ban-hon", name="Cụm loa Bản Hón")
        registry.upsert_device(s, actor=SYSTEM, node_id="loa-ban-hon", code="loa", kind="speaker",
                               zone="ban-hon")
    return "loa-ban-hon", "loa"


def _report(db, clock, kind: str = "broken", message: str = "", address: str = "10.0.0.7") -> FaultReport:
    with db.session() as s:
        row = fault_reports.report(s, node_id="loa-ban-hon", device_code="loa", kind=kind, message=message,
                                   address=address, now=clock(), cfg=CFG)
        s.expunge(row)
        return row


def _count(db) -> int:
    with db.session(write=False) as s:
        return s.scalar(select(func.count()).select_from(FaultReport)) or 0


def test_a_report_of_a_broken_speaker_is_due_within_the_broken_hours(db, clock, pole):
    row = _report(db, clock, message="  Loa   không kêu  ")
    assert (row.status, row.kind, row.message) == ("open", "broken", "Loa không kêu")
    assert row.due_at - row.created_at == timedelta(hours=72)
    assert len(row.code) == 8 and set(row.code) <= set(fault_reports.CODE_ALPHABET)


def test_a_speaker_too_early_is_due_within_the_schedule_hours(db, clock, pole):
    row = _report(db, clock, kind="too_early")
    assert row.due_at - row.created_at == timedelta(hours=168)


def test_the_ticket_keeps_the_zone_and_only_a_hash_of_the_address(db, clock, pole):
    row = _report(db, clock, address="10.0.0.7")
    with db.session(write=False) as s:
        stored = s.get(FaultReport, row.id)
        assert stored is not None and stored.zone_id is not None
        assert "10.0.0.7" not in stored.sender_sha256


@pytest.mark.parametrize(("node", "device"), [("loa-khong-co", "loa"), ("loa-ban-hon", "hop")])
def test_an_unknown_speaker_is_refused_and_nothing_stored(db, clock, pole, node, device):
    with db.session() as s, pytest.raises(NotFound):
        fault_reports.report(s, node_id=node, device_code=device, kind="broken", message="", address="a",
                             now=clock(), cfg=CFG)
    assert _count(db) == 0


@pytest.mark.parametrize(("kind", "message"), [("hong", ""), ("other", "   "), ("broken", "x" * 501),
                                               ("broken", "a\x00b")])
def test_a_bad_report_is_refused_and_nothing_stored(db, clock, pole, kind, message):
    with pytest.raises(Invalid):
        _report(db, clock, kind=kind, message=message)
    assert _count(db) == 0


def test_a_retired_speaker_takes_no_report(db, clock, pole):
    with db.session() as s:
        device = registry.list_devices(s, viewer=SYSTEM, node_id="loa-ban-hon")[0]
        registry.retire(s, actor=SYSTEM, model=Device, ident=device.id, now=clock())
    with pytest.raises(NotFound):
        _report(db, clock)


def test_one_address_may_send_only_its_hourly_reports(db, clock, pole):
    for _ in range(3):
        _report(db, clock)
    with pytest.raises(Throttled):
        _report(db, clock)
    _report(db, clock, address="10.0.0.8")  # another address is not held
    clock.advance(3601)
    _report(db, clock)
    assert _count(db) == 5


def test_it_answers_once_and_the_answer_is_public_and_audited(db, clock, pole):
    row = _report(db, clock)
    with db.session() as s:
        fault_reports.answer(s, actor=IT, report_id=row.id, text="Đã thay bộ khuếch đại.", now=clock())
    with db.session() as s:
        ticket = fault_reports.public_ticket(s, code=row.code.lower())
        assert (ticket.status, ticket.answer, ticket.answered_by) == ("answered", "Đã thay bộ khuếch đại.",
                                                                     "kythuat")
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.subject == f"fault_report:{row.code}")) \
            == "fault_report.answer"
    with db.session() as s, pytest.raises(Conflict):
        fault_reports.answer(s, actor=IT, report_id=row.id, text="Lần hai", now=clock())


def test_an_officer_may_neither_list_nor_answer_tickets(db, clock, pole):
    row = _report(db, clock)
    with db.session() as s:
        with pytest.raises(Forbidden):
            fault_reports.list_reports(s, viewer=OFFICER)
        with pytest.raises(Forbidden):
            fault_reports.answer(s, actor=OFFICER, report_id=row.id, text="Đã sửa", now=clock())


def test_open_tickets_come_first_soonest_due_first(db, clock, pole):
    early = _report(db, clock, kind="too_early")
    broken = _report(db, clock, kind="broken")
    done = _report(db, clock, kind="broken", address="10.0.0.9")
    with db.session() as s:
        fault_reports.answer(s, actor=IT, report_id=done.id, text="Đã sửa", now=clock())
    with db.session(write=False) as s:
        assert [t.id for t in fault_reports.list_reports(s, viewer=IT)] == [broken.id, early.id, done.id]
