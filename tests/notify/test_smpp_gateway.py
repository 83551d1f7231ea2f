"""Notices through an SMPP 3.4 brand-name account: the hub's smpplib client against an SMSC run
by smpp34's server (tests/notify/smsc.py), restarted and refusing as a real one does."""

from __future__ import annotations

from notify.conftest import smpp_settings
from notify.notify_helpers import CITIZEN_E164, dispatch, event, messages, new_dossier, notify_ctx
from support import wait_until
from thanthien.hub.notify.smpp import SmppGateway
from thanthien.hub.services import sms_outbox


def _gateway(ctx, smsc) -> SmppGateway:
    cfg = ctx.settings.sms
    handle = sms_outbox.handler(ctx.db, gateway="smpp", clock=ctx.clock, cfg=cfg)
    return SmppGateway(smpp_settings(smsc.port), brand=cfg.brand, handle=handle)


def _pump(ctx, gateway, until, timeout: float = 15.0) -> bool:
    handle = sms_outbox.handler(ctx.db, gateway="smpp", clock=ctx.clock, cfg=ctx.settings.sms)

    def step() -> bool:
        gateway.receive(handle)
        return until()

    return wait_until(step, timeout=timeout)


def test_a_notice_goes_with_the_brand_as_sender_and_its_delivery_report_is_stored(db, clock, tmp_path, smsc):
    ctx = notify_ctx(db, clock, tmp_path, gateway="smpp")
    gateway = _gateway(ctx, smsc)
    try:
        new_dossier(ctx, "H15-1001")
        assert dispatch(ctx, gateway).accepted == 1
        (accepted,) = smsc.accepted()
        assert (accepted["to"], accepted["from"], accepted["from_ton"]) == (CITIZEN_E164[1:], "UBND MA", 5)
        assert accepted["text"].startswith("Ho so H15-1001 da duoc tiep nhan.")  # no brand in the text
        assert _pump(ctx, gateway, lambda: messages(ctx)[0].status == "delivered")
        assert messages(ctx)[0].gateway_ref == accepted["id"]
    finally:
        gateway.close()


def test_an_accented_long_notice_goes_in_ucs2_parts(db, clock, tmp_path, smsc):
    from thanthien.hub.roles import SYSTEM
    from thanthien.hub.services import sms_templates

    ctx = notify_ctx(db, clock, tmp_path, gateway="smpp")
    with ctx.db.session() as s:
        sms_templates.update(
            s,
            actor=SYSTEM,
            kind="received",
            body="Hồ sơ {ma_ho_so} ({thu_tuc}) của {ho_ten} "
            "đã được tiếp nhận tại bộ phận một cửa, xin cảm ơn.",
            unicode=True,
            urgent=False,
            ask_rating=False,
            now=clock(),
            brand=None,
        )
    gateway = _gateway(ctx, smsc)
    try:
        new_dossier(ctx, "H15-1002")
        (msg,) = messages(ctx)
        assert (msg.encoding, msg.segments) == ("ucs2", 2)
        assert dispatch(ctx, gateway).accepted == 1
        parts = smsc.accepted()
        assert [(p["coding"], p["esm"] & 0x40) for p in parts] == [(8, 0x40), (8, 0x40)]
    finally:
        gateway.close()


def test_the_smsc_down_for_a_while_loses_nothing_and_sends_nothing_twice(db, clock, tmp_path, smsc):
    ctx = notify_ctx(db, clock, tmp_path, gateway="smpp", backoff_s=5)
    gateway = _gateway(ctx, smsc)
    try:
        new_dossier(ctx, "H15-1100", phone="0912000100")
        assert dispatch(ctx, gateway).accepted == 1
        smsc.kill()
        for i in range(1, 5):
            new_dossier(ctx, f"H15-11{i:02d}", phone=f"09120001{i:02d}")
        report = dispatch(ctx, gateway)
        assert (report.accepted, report.retried) == (0, 1)  # the first try fails, the rest wait
        smsc.start()
        clock.advance(5)
        assert dispatch(ctx, gateway).accepted == 4
        assert sorted(a["to"] for a in smsc.accepted()) == sorted(f"849120001{i:02d}" for i in range(5))
        assert _pump(ctx, gateway, lambda: all(m.status == "delivered" for m in messages(ctx)[1:]))
    finally:
        gateway.close()


def test_a_message_the_smsc_stored_before_it_dropped_the_link_is_marked_unknown_not_sent_again(
        db, clock, tmp_path, smsc):
    ctx = notify_ctx(db, clock, tmp_path, gateway="smpp", backoff_s=5)
    smsc.kill()
    smsc.die_after = 1
    smsc.start()
    gateway = _gateway(ctx, smsc)
    try:
        new_dossier(ctx, "H15-1200", phone="0912000200")
        report = dispatch(ctx, gateway)
        assert (report.accepted, report.unknown, report.retried) == (0, 1, 0)
        assert smsc.exited()
        smsc.die_after = 0
        smsc.start()
        clock.advance(3600)
        assert dispatch(ctx, gateway).accepted == 0
        [msg] = messages(ctx)
        assert msg.status == "unknown" and "không rõ tổng đài đã nhận" in msg.last_error
        assert [a["to"] for a in smsc.accepted()] == ["84912000200"]  # once, the stored one
    finally:
        gateway.close()


def test_a_busy_smsc_is_tried_again_after_the_backoff(db, clock, tmp_path, smsc):
    smsc.kill()
    smsc.refuse = 1
    smsc.ledger.unlink(missing_ok=True)
    smsc.start()
    ctx = notify_ctx(db, clock, tmp_path, gateway="smpp", backoff_s=30)
    gateway = _gateway(ctx, smsc)
    try:
        new_dossier(ctx, "H15-1200")
        assert dispatch(ctx, gateway).retried == 1
        (msg,) = messages(ctx)
        assert (msg.status, msg.attempts, (msg.next_attempt_at - clock()).total_seconds()) == (
            "queued",
            1,
            30,
        )
        assert "throttl" in msg.last_error.lower() or "0x58" in msg.last_error
        clock.advance(30)
        assert dispatch(ctx, gateway).accepted == 1
        assert len(smsc.accepted()) == 1
    finally:
        gateway.close()


def test_a_reply_4_through_the_smsc_becomes_one_rating(db, clock, tmp_path, smsc):
    from sqlalchemy import select

    from thanthien.hub.db.models import DossierRating, SmsInbound

    ctx = notify_ctx(db, clock, tmp_path, gateway="smpp")
    gateway = _gateway(ctx, smsc)
    try:
        new_dossier(ctx, "H15-1300")
        event(ctx, "H15-1300", "result_ready")
        dispatch(ctx, gateway)
        smsc.send_mo(CITIZEN_E164, "4")
        smsc.send_mo(CITIZEN_E164, "4")

        def inbound() -> int:
            with ctx.db.session(write=False) as s:
                return len(list(s.scalars(select(SmsInbound))))

        assert _pump(ctx, gateway, lambda: inbound() == 2)
        with ctx.db.session(write=False) as s:
            assert [r.score for r in s.scalars(select(DossierRating))] == [4]
            assert sorted(i.outcome for i in s.scalars(select(SmsInbound))) == ["rated_already", "rating"]
    finally:
        gateway.close()


def test_a_message_in_flight_when_the_hub_died_is_marked_unknown_not_sent_again(db, clock, tmp_path, smsc):
    ctx = notify_ctx(db, clock, tmp_path, gateway="smpp")
    gateway = _gateway(ctx, smsc)
    try:
        new_dossier(ctx, "H15-1400")
        with ctx.db.session() as s:
            from thanthien.hub.db.models import SmsMessage

            s.get(SmsMessage, messages(ctx)[0].id).status = "sending"
        assert sms_outbox.recover(ctx.db, gateway, now=clock()) == 1
        assert dispatch(ctx, gateway).accepted == 0
        assert messages(ctx)[0].status == "unknown" and smsc.accepted() == []
    finally:
        gateway.close()
