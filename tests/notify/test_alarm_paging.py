"""Alarms reach the person on call: SMS into the outbox, e-mail through a real SMTP server
(aiosmtpd); escalation, quiet hours, on-call shifts, the digest (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from notify.notify_helpers import TZ, local, notify_ctx
from thanthien.hub.db.models import EmailMessage, SmsMessage
from thanthien.hub.notify.mail import SmtpMailer
from thanthien.hub.notify.settings import NotifySettings, SmtpSettings
from thanthien.hub.roles import SYSTEM, ActingUser
from thanthien.hub.services import alarms, paging


def _contacts(ctx, **quiet) -> tuple[int, int]:
    with ctx.db.session() as s:
        a = paging.create_contact(
            s,
            actor=SYSTEM,
            name="Lò Văn Tuấn",
            audience="it",
            phone="0988000001",
            email="tuan@ubnd.test",
            rank=1,
            **quiet,
        )
        b = paging.create_contact(
            s,
            actor=SYSTEM,
            name="Cà Thị Mai",
            audience="it",
            phone="0988000002",
            email="mai@ubnd.test",
            rank=2,
        )
        return a.id, b.id


def _alarm(ctx, severity: str = "critical") -> int:
    with ctx.db.session() as s:
        alarm = alarms.raise_alarm(
            s,
            kind="node_offline",
            subject="loa-ban-hon",
            severity=severity,
            message="Cụm loa Bản Hón ngoại tuyến",
            now=ctx.clock(),
            notify=False,
        ).alarm
        s.flush()
        return alarm.id


def _page(ctx, cfg: NotifySettings) -> list[int]:
    with ctx.db.session() as s:
        return [
            p.contact_id
            for p in paging.page_alarms(
                s, now=ctx.clock(), tz=TZ, cfg=cfg, brand="UBND MA", site="UBND thi tran"
            )
        ]


def _smtp(box) -> NotifySettings:
    return NotifySettings(
        escalate_after_s=900,
        repeat_s=3600,
        smtp=SmtpSettings(host="127.0.0.1", port=box.port, from_addr="canhbao@ubnd.test"),
    )


def test_an_unacknowledged_critical_alarm_escalates_to_the_next_contact(db, clock, tmp_path, smtp_server):
    ctx = notify_ctx(db, clock, tmp_path)
    cfg = _smtp(smtp_server)
    first, second = _contacts(ctx)
    _alarm(ctx)
    assert _page(ctx, cfg) == [first]
    clock.advance(600)
    assert _page(ctx, cfg) == []  # not yet: 15 minutes
    clock.advance(300)
    assert _page(ctx, cfg) == [second]
    assert _page(ctx, cfg) == []
    assert paging.send_emails(ctx.db, SmtpMailer(cfg.smtp), clock=clock, cfg=cfg) == 2
    assert smtp_server.received.wait_count(2)
    to = [m["To"] for m in smtp_server.received.snapshot()]
    assert to == ["tuan@ubnd.test", "mai@ubnd.test"]
    assert "chuyen tiep" in smtp_server.received.snapshot()[1]["Subject"]
    with ctx.db.session(write=False) as s:
        sms = list(s.scalars(select(SmsMessage).order_by(SmsMessage.id)))
    assert [(m.phone, m.urgent, m.body.startswith("UBND MA: KHAN CAP")) for m in sms] == [
        ("+84988000001", True, True),
        ("+84988000002", True, True),
    ]


def test_an_acknowledged_alarm_pages_nobody_further(db, clock, tmp_path, smtp_server):
    ctx = notify_ctx(db, clock, tmp_path)
    cfg = _smtp(smtp_server)
    _contacts(ctx)
    alarm_id = _alarm(ctx)
    _page(ctx, cfg)
    with ctx.db.session() as s:
        alarms.acknowledge_alarm(
            s, alarm_id=alarm_id, actor=ActingUser("kythuat", "it", 7), now=clock(), notify=False
        )
    clock.advance(3600)
    assert _page(ctx, cfg) == []


def _clear(ctx) -> None:
    with ctx.db.session() as s:
        alarms.clear_alarm(s, kind="node_offline", subject="loa-ban-hon", now=ctx.clock(), notify=False)


def test_a_cleared_alarm_tells_each_contact_it_reached_once_that_it_is_over(db, clock, tmp_path, smtp_server):
    ctx = notify_ctx(db, clock, tmp_path)
    cfg = _smtp(smtp_server)
    first, second = _contacts(ctx)
    _alarm(ctx)
    _page(ctx, cfg)
    clock.advance(900)
    _page(ctx, cfg)
    assert paging.send_emails(ctx.db, SmtpMailer(cfg.smtp), clock=clock, cfg=cfg) == 2
    clock.advance(60)
    _clear(ctx)
    assert _page(ctx, cfg) == [first, second]
    assert _page(ctx, cfg) == []
    assert paging.send_emails(ctx.db, SmtpMailer(cfg.smtp), clock=clock, cfg=cfg) == 2
    assert smtp_server.received.wait_count(4)
    assert [m["Subject"] for m in smtp_server.received.snapshot()[2:]] == [
        "[UBND thi tran] DA HET: node_offline loa-ban-hon"] * 2
    with ctx.db.session(write=False) as s:
        notices = [m for m in s.scalars(select(SmsMessage).order_by(SmsMessage.id)) if "DA HET" in m.body]
    assert [(m.phone, m.urgent, m.status) for m in notices] == [("+84988000001", False, "queued"),
                                                                ("+84988000002", False, "queued")]
    assert notices[0].body.startswith("UBND MA: DA HET CANH BAO luc ")


def test_a_page_held_by_quiet_hours_is_cancelled_when_the_alarm_clears(db, clock, tmp_path):
    ctx = notify_ctx(db, clock, tmp_path)
    cfg = NotifySettings()
    _contacts(ctx, quiet_start="22:00", quiet_end="06:00")
    local(clock, 23, 30)
    _alarm(ctx, severity="major")
    _page(ctx, cfg)
    clock.advance(600)
    _clear(ctx)
    assert _page(ctx, cfg) == []
    with ctx.db.session(write=False) as s:
        sms = [(m.status, m.hold_reason) for m in s.scalars(select(SmsMessage))]
        mail = [m.status for m in s.scalars(select(EmailMessage))]
    assert sms == [("cancelled", "cảnh báo đã hết")]
    assert mail == ["cancelled"]


def test_quiet_hours_hold_a_major_page_but_not_a_critical_one(db, clock, tmp_path):
    ctx = notify_ctx(db, clock, tmp_path)
    cfg = NotifySettings()
    _contacts(ctx, quiet_start="22:00", quiet_end="06:00")
    local(clock, 23, 30)
    _alarm(ctx, severity="major")
    with ctx.db.session() as s:
        alarms.raise_alarm(
            s,
            kind="camera_down",
            subject="cam-sanh",
            severity="critical",
            message="Camera sảnh",
            now=clock(),
            notify=False,
        )
    _page(ctx, cfg)
    with ctx.db.session(write=False) as s:
        sms = {m.body.split(" - ")[0]: m for m in s.scalars(select(SmsMessage))}
    major, critical = sms["UBND MA: NGHIEM TRONG"], sms["UBND MA: KHAN CAP"]
    assert major.next_attempt_at.astimezone(TZ).strftime("%H:%M") == "06:00"
    assert major.hold_reason == "giờ nghỉ của người nhận"
    assert critical.next_attempt_at == clock()


def test_the_person_on_call_is_paged_before_the_first_in_rank(db, clock, tmp_path):
    ctx = notify_ctx(db, clock, tmp_path)
    _first, second = _contacts(ctx)
    with ctx.db.session() as s:
        paging.add_shift(
            s,
            actor=SYSTEM,
            contact_id=second,
            starts_at=clock() - timedelta(hours=1),
            ends_at=clock() + timedelta(hours=8),
        )
    _alarm(ctx)
    assert _page(ctx, NotifySettings()) == [second]


def test_the_daily_digest_goes_once_a_day_to_each_contact(db, clock, tmp_path, smtp_server):
    ctx = notify_ctx(db, clock, tmp_path)
    cfg = _smtp(smtp_server)
    _contacts(ctx)
    _alarm(ctx, severity="warning")
    local(clock, 7, 0)

    def digest() -> int:
        with ctx.db.session() as s:
            return paging.digest(s, now=clock(), tz=TZ, cfg=cfg, site="UBND")

    assert digest() == 0  # before 07:30
    local(clock, 7, 45)
    assert (digest(), digest()) == (2, 0)
    paging.send_emails(ctx.db, SmtpMailer(cfg.smtp), clock=clock, cfg=cfg)
    assert smtp_server.received.wait_count(2)
    body = smtp_server.received.snapshot()[0].get_payload(decode=True).decode("utf-8")
    assert "Cụm loa Bản Hón ngoại tuyến" in body and "CHƯA XÁC NHẬN" in body


def test_an_email_waits_while_the_smtp_server_is_down(db, clock, tmp_path, smtp_server):
    from thanthien.broker import free_port

    ctx = notify_ctx(db, clock, tmp_path)
    down = NotifySettings(
        email_backoff_s=60, smtp=SmtpSettings(host="127.0.0.1", port=free_port(), timeout_s=2)
    )
    with ctx.db.session() as s:
        paging.queue_email(
            s, to="tuan@ubnd.test", subject="x", body="y", kind="alarm", alarm_id=None, now=clock()
        )
    assert paging.send_emails(ctx.db, SmtpMailer(down.smtp), clock=clock, cfg=down) == 0
    with ctx.db.session(write=False) as s:
        (mail,) = s.scalars(select(EmailMessage))
    assert (mail.status, mail.attempts, (mail.next_attempt_at - clock()).total_seconds()) == ("queued", 1, 60)
    up = _smtp(smtp_server)
    clock.advance(60)
    assert paging.send_emails(ctx.db, SmtpMailer(up.smtp), clock=clock, cfg=up) == 1
    assert smtp_server.received.wait_count(1)


def _statements_of_a_quiet_pass(ctx, cfg: NotifySettings) -> int:
    """Statements of a paging pass that pages nobody (every alarm waits for its next step)."""
    from sqlalchemy import event

    statements = []
    listen = lambda *_a: statements.append(1)  # noqa: E731
    event.listen(ctx.db.engine, "before_cursor_execute", listen)
    try:
        assert _page(ctx, cfg) == []
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", listen)
    return len(statements)


def test_a_paging_pass_reads_as_much_for_fifty_alarms_as_for_five(db, clock, tmp_path):
    """After a typhoon a province holds thousands of node_offline alarms: a pass reads their
    latest pages in one query and each chain once, not one of each per alarm."""
    ctx = notify_ctx(db, clock, tmp_path)
    cfg = NotifySettings(escalate_after_s=900, repeat_s=3600)
    _contacts(ctx)

    def raise_offline(names: range) -> None:
        with ctx.db.session() as s:
            for i in names:
                alarms.raise_alarm(s, kind="node_offline", subject=f"loa-{i:03d}", severity="critical",
                                   message=f"Cụm loa {i} ngoại tuyến", now=ctx.clock(), notify=False)

    raise_offline(range(5))
    assert len(_page(ctx, cfg)) == 5
    five = _statements_of_a_quiet_pass(ctx, cfg)
    raise_offline(range(5, 50))
    assert len(_page(ctx, cfg)) == 45
    fifty = _statements_of_a_quiet_pass(ctx, cfg)
    assert five == fifty
