"""Jobs that tell people: the SMS outbox and its gateway, dossier deadlines, alarm pages and
the digest, the e-mail outbox. Each takes the registry name of its hub context (like
``maintenance.py``); the gateway of a context is built once, in the scheduler process.

``sms-dispatch`` (``sms.dispatch_s``)
    settles the messages a dead hub left in flight (once, first), hands the due ones over,
    asks the gateway what became of those it holds.
``sms-receive`` (``sms.dispatch_s``)
    texts and delivery reports from the gateway (and gammu-smsd kept running, with run_smsd).
``dossier-deadlines`` (60 s)
    due-soon and overdue notices.
``alarm-pages`` (``notify.check_s``)
    pages, escalations, repeats, the daily digest.
``email-send`` (``notify.check_s``)
    the e-mail outbox through SMTP.
"""

from __future__ import annotations

import logging
import threading
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler

from thanthien.hub.context import HubContext
from thanthien.hub.jobs import contexts
from thanthien.hub.notify.gateway import Gateway, GatewayError
from thanthien.hub.notify.mail import SmtpMailer
from thanthien.hub.services import dossiers, paging, sms_outbox, sms_templates

log = logging.getLogger(__name__)

_GATEWAYS: dict[str, Gateway] = {}
_RECOVERED: set[str] = set()
_LOCK = threading.Lock()


def build_gateway(ctx: HubContext) -> Gateway | None:
    """The gateway the settings name (``None`` for ``none``: messages wait in the outbox)."""
    cfg = ctx.settings.sms
    handle = sms_outbox.handler(ctx.db, gateway=cfg.gateway, clock=ctx.clock, cfg=cfg)
    if cfg.gateway == "gammu":
        from thanthien.hub.notify.gammu import GammuGateway

        spool = cfg.gammu.spool_dir or ctx.settings.hub.data_dir / "gammu"
        return GammuGateway(cfg.gammu.model_copy(update={"spool_dir": spool}))
    if cfg.gateway == "smpp":
        from thanthien.hub.notify.smpp import SmppGateway

        return SmppGateway(cfg.smpp, brand=cfg.brand, handle=handle)
    return None


def gateway_of(context: str) -> Gateway | None:
    ctx = contexts.context(context)
    if ctx is None:
        return None
    with _LOCK:
        if context not in _GATEWAYS:
            gateway = build_gateway(ctx)
            if gateway is None:
                return None
            _GATEWAYS[context] = gateway
        return _GATEWAYS[context]


def _tz(ctx: HubContext) -> ZoneInfo:
    return ZoneInfo(ctx.settings.hub.timezone)


def dispatch_sms(context: str) -> int:
    ctx, gateway = contexts.context(context), gateway_of(context)
    if ctx is None or gateway is None:
        return 0
    if context not in _RECOVERED:
        settled = sms_outbox.recover(ctx.db, gateway, now=ctx.clock())
        if settled:
            log.warning("sms: %d message(s) were in flight when the hub stopped; settled", settled)
        _RECOVERED.add(context)
    report = sms_outbox.dispatch(ctx.db, gateway, clock=ctx.clock, tz=_tz(ctx), cfg=ctx.settings.sms)
    sms_outbox.track(ctx.db, gateway)
    return report.accepted


def receive_sms(context: str) -> int:
    ctx, gateway = contexts.context(context), gateway_of(context)
    if ctx is None or gateway is None:
        return 0
    cfg = ctx.settings.sms
    try:
        ensure = getattr(gateway, "ensure_smsd", None)
        if ensure is not None:
            ensure()
        return gateway.receive(sms_outbox.handler(ctx.db, gateway=gateway.name, clock=ctx.clock, cfg=cfg))
    except GatewayError as exc:
        log.warning("sms gateway %s: %s", gateway.name, exc)
        return 0


def check_dossiers(context: str) -> int:
    ctx = contexts.context(context)
    if ctx is None:
        return 0
    with ctx.db.session() as session:
        return dossiers.check_deadlines(session, now=ctx.clock(), tz=_tz(ctx), cfg=ctx.settings.sms)


def page_alarms(context: str) -> int:
    ctx = contexts.context(context)
    if ctx is None:
        return 0
    s = ctx.settings
    with ctx.db.session() as session:
        pages = paging.page_alarms(
            session,
            now=ctx.clock(),
            tz=_tz(ctx),
            cfg=s.notify,
            brand=sms_templates.brand_in_text(s.sms),
            site=s.hub.site_name,
        )
        paging.digest(session, now=ctx.clock(), tz=_tz(ctx), cfg=s.notify, site=s.hub.site_name)
    return len(pages)


def send_emails(context: str) -> int:
    ctx = contexts.context(context)
    if ctx is None:
        return 0
    return paging.send_emails(
        ctx.db, SmtpMailer(ctx.settings.notify.smtp), clock=ctx.clock, cfg=ctx.settings.notify
    )


def stop(context: str) -> None:
    """Close the context's gateway (and the gammu-smsd it runs)."""
    with _LOCK:
        gateway = _GATEWAYS.pop(context, None)
        _RECOVERED.discard(context)
    if gateway is not None:
        gateway.close()


def install(scheduler: BaseScheduler, ctx: HubContext, name: str) -> None:
    """Add these jobs to the hub's scheduler (``build_scheduler`` registered ``ctx`` as ``name``)."""
    s = ctx.settings
    jobs = [
        (check_dossiers, 60.0, "dossier-deadlines"),
        (page_alarms, s.notify.check_s, "alarm-pages"),
        (send_emails, s.notify.check_s, "email-send"),
    ]
    if s.sms.gateway != "none":
        jobs += [
            (dispatch_sms, s.sms.dispatch_s, "sms-dispatch"),
            (receive_sms, s.sms.dispatch_s, "sms-receive"),
        ]
    for func, seconds, job_id in jobs:
        scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            args=[name],
            id=job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
