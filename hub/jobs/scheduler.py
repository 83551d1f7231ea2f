"""The hub's one scheduler: APScheduler 3 ``BackgroundScheduler``, memory job store.

The jobs are module-level functions with one primitive argument, the name under which the
process registered its :class:`HubContext` (``jobs/contexts.py``), so they could move to a
persistent job store unchanged. They are derived from the settings and the tables at start-up;
each one coalesces missed runs and never overlaps itself.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from thanthien.hub.context import HubContext
from thanthien.hub.jobs import broadcasts, contexts, maintenance, notify

log = logging.getLogger(__name__)


def build_scheduler(ctx: HubContext, name: str = "hub") -> BackgroundScheduler:
    """A scheduler (not started) with every job, registered under ``name``."""
    # APScheduler logs every run at INFO (a line a second here); failures still show as errors.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    s = ctx.settings
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
    contexts.register(name, ctx, scheduler)
    jobs = (
        (maintenance.check_heartbeats, s.health.heartbeat_s / 4, "heartbeats"),
        (maintenance.check_alarms, s.alarms.check_s, "alarms"),
        (maintenance.check_cameras, s.alarms.check_s, "cameras"),
        (maintenance.deliver_webhooks, 1.0, "webhooks"),
        (maintenance.maintain_telemetry, 300.0, "telemetry"),
        (maintenance.publish_hub_time, s.health.heartbeat_s / maintenance.HUB_TIME_PER_HEARTBEAT, "hub-time"),
    )
    for func, seconds, job_id in jobs:
        scheduler.add_job(func, "interval", seconds=seconds, args=[name], id=job_id, replace_existing=True)
    scheduler.add_job(maintenance.maintain_telemetry, "date",
                      run_date=datetime.now(UTC) + timedelta(seconds=2), args=[name], id="telemetry-at-start")
    broadcasts.install(scheduler, ctx, name)  # broadcasts: plans and delivery checks
    notify.install(scheduler, ctx, name)  # SMS and e-mail: outboxes, dossier deadlines, alarm pages
    return scheduler


def unregister_context(name: str) -> None:
    """Jobs that start from now on find no context and return (the hub is stopping)."""
    contexts.unregister(name)
    notify.stop(name)  # the SMS gateway (and a gammu-smsd the hub runs)
