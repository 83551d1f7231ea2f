"""Dossier notices through a GSM modem: gammu-smsd (Gammu's dummy driver) sends what the hub's
outbox hands it; the rules of Decree 91 decide when (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from notify.notify_helpers import (
    CITIZEN,
    CITIZEN_E164,
    TZ,
    dispatch,
    event,
    local,
    messages,
    new_dossier,
    notify_ctx,
    officer_with_user,
)
from support import wait_until
from thanthien.hub.db.models import DossierRating, SmsOptOut
from thanthien.hub.notify.gammu import GammuGateway
from thanthien.hub.notify.gateway import Outgoing
from thanthien.hub.roles import SYSTEM, ActingUser
from thanthien.hub.services import dossiers, sms_outbox, users


def _sent_texts(smsd) -> dict[str, str]:
    """Sent file name -> text, as gammu-smsd left them in its sent folder."""
    folder = smsd.cfg.spool_dir / "sent"
    return {p.name: p.read_bytes().decode("utf-16") for p in sorted(folder.iterdir())}


def _receive(ctx, gateway, smsd, n: int) -> None:
    inbox = smsd.cfg.spool_dir / "inbox"
    assert wait_until(lambda: len(list(inbox.iterdir())) >= n, timeout=30), smsd.folder("inbox")
    gateway.receive(sms_outbox.handler(ctx.db, gateway="gammu", clock=ctx.clock, cfg=ctx.settings.sms))


def test_each_dossier_event_sends_its_text_to_the_citizen_once(db, clock, tmp_path, smsd):
    ctx = notify_ctx(db, clock, tmp_path, gateway="gammu")
    gateway = GammuGateway(smsd.cfg)
    new_dossier(ctx, "H15-0001")
    event(ctx, "H15-0001", "supplement", note="ban sao CCCD", key="tinh-77")
    event(ctx, "H15-0001", "supplement", note="ban sao CCCD", key="tinh-77")  # the province's retry
    event(ctx, "H15-0001", "result_ready")
    event(ctx, "H15-0001", "result_ready")
    assert dispatch(ctx, gateway).accepted == 3
    assert wait_until(lambda: len(smsd.folder("sent")) == 3, timeout=30), smsd.folder("outbox")
    texts = list(_sent_texts(smsd).items())
    assert all(f"_{CITIZEN_E164}_m" in name for name, _ in texts)
    bodies = [t for _, t in texts]
    assert bodies[0].startswith("UBND MA: Ho so H15-0001 da duoc tiep nhan. Hen tra ket qua: ")
    assert "UBND MA: Ho so H15-0001 can bo sung: ban sao CCCD." in bodies[1]
    assert bodies[2].startswith("UBND MA: Ho so H15-0001 da co ket qua.") and "tra loi 1-4" in bodies[2]
    sms_outbox.track(ctx.db, gateway)
    assert [m.status for m in messages(ctx)] == ["sent", "sent", "sent"]


def test_a_notice_recorded_after_22_00_waits_for_07_00(db, clock, tmp_path, smsd):
    ctx = notify_ctx(db, clock, tmp_path, gateway="gammu")
    gateway = GammuGateway(smsd.cfg)
    local(clock, 22, 30)
    new_dossier(ctx, "H15-0002")
    assert dispatch(ctx, gateway).held == 1
    (msg,) = messages(ctx)
    assert (msg.status, msg.next_attempt_at.astimezone(TZ).strftime("%H:%M")) == ("queued", "07:00")
    clock.advance(3600)
    assert dispatch(ctx, gateway).accepted == 0  # not due before 07:00
    clock.now = msg.next_attempt_at
    assert dispatch(ctx, gateway).accepted == 1
    assert smsd.folder("outbox") + smsd.folder("sent")


def test_a_kind_the_admin_marks_urgent_is_sent_outside_the_window(db, clock, tmp_path, smsd):
    from thanthien.hub.services import sms_templates

    ctx = notify_ctx(db, clock, tmp_path, gateway="gammu")
    with ctx.db.session() as s:
        sms_templates.update(
            s,
            actor=SYSTEM,
            kind="received",
            body=sms_templates.DEFAULTS["received"],
            unicode=False,
            urgent=True,
            ask_rating=False,
            now=clock(),
            brand="UBND MA",
        )
    local(clock, 23, 15)
    new_dossier(ctx, "H15-0003")
    assert dispatch(ctx, GammuGateway(smsd.cfg)).accepted == 1


def test_a_citizen_who_replies_tu_choi_gets_no_more_messages(db, clock, tmp_path, smsd):
    ctx = notify_ctx(db, clock, tmp_path, gateway="gammu")
    gateway = GammuGateway(smsd.cfg)
    new_dossier(ctx, "H15-0004")
    dispatch(ctx, gateway)
    smsd.inject(CITIZEN_E164, "Tu choi")
    _receive(ctx, gateway, smsd, 1)
    event(ctx, "H15-0004", "result_ready")
    assert dispatch(ctx, gateway).accepted == 0
    assert [m.status for m in messages(ctx)] == ["handed", "blocked"]
    with ctx.db.session(write=False) as s:
        assert s.get(SmsOptOut, CITIZEN_E164).by == "citizen"
    assert len(smsd.folder("outbox") + smsd.folder("sent")) == 1


def test_a_number_over_its_daily_cap_waits_for_the_next_day(db, clock, tmp_path, smsd):
    ctx = notify_ctx(db, clock, tmp_path, gateway="gammu", daily_cap=2)
    gateway = GammuGateway(smsd.cfg)
    new_dossier(ctx, "H15-0005")
    event(ctx, "H15-0005", "supplement", note="to khai")
    event(ctx, "H15-0005", "result_ready")
    report = dispatch(ctx, gateway)
    assert (report.accepted, report.held) == (2, 1)
    held = messages(ctx, status="queued")[0]
    assert held.next_attempt_at.astimezone(TZ).date() == (clock().astimezone(TZ) + timedelta(days=1)).date()
    assert "đủ 2 tin" in held.hold_reason


def test_a_reply_4_becomes_one_rating_of_that_dossiers_counter_and_officer(db, clock, tmp_path, smsd):
    ctx = notify_ctx(db, clock, tmp_path, gateway="gammu")
    gateway = GammuGateway(smsd.cfg)
    new_dossier(ctx, "H15-0006")
    event(ctx, "H15-0006", "result_ready")
    dispatch(ctx, gateway)
    smsd.inject(CITIZEN_E164, "4")
    _receive(ctx, gateway, smsd, 1)
    smsd.inject(CITIZEN_E164, "4")  # the citizen sends it again
    _receive(ctx, gateway, smsd, 1)
    with ctx.db.session(write=False) as s:
        ratings = list(s.scalars(select(DossierRating)))
    assert [(r.score, r.dossier_id) for r in ratings] == [(4, messages(ctx)[1].dossier_id)]


def test_the_modem_daemon_down_for_a_while_loses_nothing(db, clock, tmp_path, smsd):
    ctx = notify_ctx(db, clock, tmp_path, gateway="gammu")
    gateway = GammuGateway(smsd.cfg)
    smsd.kill()
    for i in range(5):
        new_dossier(ctx, f"H15-01{i}", phone=f"09123456{i:02d}")
    assert dispatch(ctx, gateway).accepted == 5  # handed to the daemon's outbox while it is down
    assert len(smsd.folder("outbox")) == 5
    smsd.start()
    assert wait_until(lambda: len(smsd.folder("sent")) == 5, timeout=60), smsd.folder("outbox")
    sms_outbox.track(ctx.db, gateway)
    assert sorted(m.status for m in messages(ctx)) == ["sent"] * 5


def test_a_hub_restarted_with_a_message_in_flight_hands_it_over_exactly_once(db, clock, tmp_path, gammu_cfg):
    ctx = notify_ctx(db, clock, tmp_path, gateway="gammu")
    gateway = GammuGateway(gammu_cfg)
    new_dossier(ctx, "H15-0200")
    (msg,) = messages(ctx)
    accepted = gateway.submit(
        Outgoing(id=msg.id, phone=msg.phone, body=msg.body, encoding=msg.encoding)
    )  # handed over, then the hub died before its commit
    with ctx.db.session() as s:
        s.get(type(msg), msg.id).status = "sending"
    assert sms_outbox.recover(ctx.db, gateway, now=clock()) == 1
    (after,) = messages(ctx)
    assert (after.status, after.gateway_ref) == ("handed", accepted.ref)
    assert dispatch(ctx, gateway).accepted == 0
    assert len(list((gammu_cfg.spool_dir / "outbox").iterdir())) == 1


def test_the_number_is_shown_in_full_only_to_the_officer_handling_the_dossier(db, clock, tmp_path):
    ctx = notify_ctx(db, clock, tmp_path)
    with ctx.db.session() as s:
        mine = users.create_user(
            s, actor=SYSTEM, username="hoa", password="mat-khau-dung-2026", role="officer", now=clock()
        )
        other = users.create_user(
            s, actor=SYSTEM, username="lan", password="mat-khau-dung-2026", role="officer", now=clock()
        )
        ids = (mine.id, other.id)
    officer = officer_with_user(ctx, ids[0])
    new_dossier(ctx, "H15-0300", officer_id=officer)
    with ctx.db.session(write=False) as s:
        d = dossiers.get(s, "H15-0300", viewer=SYSTEM)
        seen = [
            dossiers.view(s, d, viewer=ActingUser(username=n, role="officer", id=i)).phone
            for n, i in (("hoa", ids[0]), ("lan", ids[1]))
        ]
        admin = dossiers.view(s, d, viewer=ActingUser(username="admin", role="admin", id=99)).phone
    assert seen == [CITIZEN, "091****678"]
    assert admin == "091****678"


def test_due_soon_and_overdue_notices_go_once_each(db, clock, tmp_path):
    ctx = notify_ctx(db, clock, tmp_path, due_soon_hours=3)
    new_dossier(ctx, "H15-0400", due_in_h=5)

    def check() -> int:
        with ctx.db.session() as s:
            return dossiers.check_deadlines(s, now=clock(), tz=TZ, cfg=ctx.settings.sms)

    assert check() == 0
    clock.advance(2.5 * 3600)
    assert (check(), check()) == (1, 0)
    clock.advance(3 * 3600)
    assert (check(), check()) == (1, 0)
    assert [m.kind for m in messages(ctx)] == ["received", "due_soon", "overdue"]


@pytest.mark.parametrize("kind", ["due_soon", "overdue"])
def test_an_officer_cannot_send_the_deadline_notices_by_hand(db, clock, tmp_path, kind):
    from thanthien.hub.services.errors import Invalid

    ctx = notify_ctx(db, clock, tmp_path)
    new_dossier(ctx, "H15-0500")
    with pytest.raises(Invalid):
        event(ctx, "H15-0500", kind)
