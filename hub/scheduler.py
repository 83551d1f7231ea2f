"""Periodic jobs on APScheduler 3 (BackgroundScheduler, memory job store).

The jobs are module-level functions with one primitive argument, the name under which the
process registered its :class:`HubContext`, so they could move to a persistent job store
unchanged. They are derived from the settings at start-up; each one coalesces missed runs
and never overlaps itself.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

from thanthien.hub import broadcast_jobs
from thanthien.hub.context import HubContext
from thanthien.hub.services import alarms, cameras, health, webhook

log = logging.getLogger(__name__)

_CONTEXTS: dict[str, HubContext] = {}


def register_context(name: str, ctx: HubContext) -> None:
    _CONTEXTS[name] = ctx


def unregister_context(name: str) -> None:
    _CONTEXTS.pop(name, None)
    broadcast_jobs.uninstall(name)


def _ctx(name: str) -> HubContext:
    return _CONTEXTS[name]


# -- jobs ----------------------------------------------------------------------------------
def check_heartbeats(context: str) -> list[str]:
    ctx = _ctx(context)
    h = ctx.settings.health
    with ctx.db.session() as session:
        return health.expire_heartbeats(session, now=ctx.clock(), heartbeat_s=h.heartbeat_s,
                                        factor=h.expiry_heartbeats, notify=ctx.notify)


def check_alarms(context: str) -> int:
    """Reminders, and the spike rule re-evaluated as its window slides past old presses."""
    ctx = _ctx(context)
    now = ctx.clock()
    with ctx.db.session() as session:
        for counter in alarms.spike_subjects(session):
            alarms.evaluate_spike(session, counter=counter, now=now, rule=ctx.spike_rule, notify=ctx.notify)
        return len(alarms.send_reminders(session, now=now, remind_s=ctx.settings.alarms.remind_s,
                                         notify=ctx.notify))


def check_cameras(context: str) -> int:
    """Camera alarms for cameras that stay down, frozen or black without new reports."""
    ctx = _ctx(context)
    with ctx.db.session() as session:
        return cameras.check_alarms(session, now=ctx.clock(), tz=ZoneInfo(ctx.settings.hub.timezone),
                                    alarm_after_s=ctx.settings.cameras.alarm_after_s, notify=ctx.notify)


def maintain_telemetry(context: str) -> tuple[int, int]:
    """Hourly roll-ups first, then the raw samples past retention are deleted."""
    ctx = _ctx(context)
    now = ctx.clock()
    with ctx.db.session() as session:
        rolled = health.rollup_telemetry(session, now=now)
    with ctx.db.session() as session:
        pruned = health.prune_telemetry(session, now=now,
                                        retention_days=ctx.settings.health.telemetry_retention_days)
    if pruned:
        log.info("telemetry: %d hourly roll-ups written, %d old samples deleted", rolled, pruned)
    return rolled, pruned


def deliver_webhooks(context: str) -> tuple[int, int]:
    ctx = _ctx(context)
    cfg = ctx.settings.alarms
    if cfg.webhook_url is None:
        return 0, 0
    with ctx.db.session() as session:
        return webhook.deliver_pending(session, url=str(cfg.webhook_url), now=ctx.clock(),
                                       attempts=cfg.webhook_attempts, backoff_s=cfg.webhook_backoff_s,
                                       timeout_s=cfg.webhook_timeout_s, site=ctx.settings.hub.site_name)


# -- wiring --------------------------------------------------------------------------------
def build_scheduler(ctx: HubContext, name: str = "hub") -> BackgroundScheduler:
    register_context(name, ctx)
    # APScheduler logs every run at INFO (a line a second here); failures still show as errors.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    s = ctx.settings
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
    jobs = (
        (check_heartbeats, s.health.heartbeat_s / 4, "heartbeats"),
        (check_alarms, s.alarms.check_s, "alarms"),
        (check_cameras, s.alarms.check_s, "cameras"),
        (deliver_webhooks, 1.0, "webhooks"),
        (maintain_telemetry, 300.0, "telemetry"),
    )
    for func, seconds, job_id in jobs:
        scheduler.add_job(func, "interval", seconds=seconds, args=[name], id=job_id, replace_existing=True)
    scheduler.add_job(maintain_telemetry, "date", run_date=datetime.now(UTC) + timedelta(seconds=2),
                      args=[name], id="telemetry-at-start")
    broadcast_jobs.install(scheduler, ctx, name)  # broadcasts: plans and delivery checks
    return scheduler
