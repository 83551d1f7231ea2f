"""Scheduler jobs for broadcasts, on the hub's one APScheduler (see ``jobs/scheduler.py``).

Jobs are derived from the broadcast tables and rebuilt from them at start-up (memory job
store; the tables are the truth):

``plans`` (interval, ``broadcasts.plan_republish_s``)
    materialise occurrences for the horizon, republish every speaker node's plan (retained),
    and re-derive the per-broadcast jobs. Also run once at start-up.
``plans-check`` (interval, ``broadcasts.plan_check_s``)
    the same, publishing only the plans whose items changed (a speaker added to a zone, the
    horizon moving on); :func:`after_change` does this right after every commit that marked
    broadcasts changed (``services/broadcasts.BROADCAST_CHANGES``), whoever made it.
``broadcast-<id>`` (date job per approved broadcast with an unchecked occurrence)
    at the next occurrence's end plus ``report_grace_s``: silent nodes count as missed and the
    ``broadcast_missed`` alarm is raised; the job then re-arms itself for the next one.

Misfire and coalesce: a delivery check is never skipped, however late the scheduler gets to
it (``misfire_grace_time=None``: a hub that was down at the deadline checks when it is back),
and several overdue runs coalesce into one (the check handles every overdue occurrence at
once). The ``plans`` job coalesces too, with a grace of one interval: a skipped republish is
harmless, the next one catches up. Nodes never depend on these jobs to play on time: they
play from their retained plan on their own clocks.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import select

from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Occurrence
from thanthien.hub.jobs import contexts
from thanthien.hub.services import deliveries, plans
from thanthien.hub.services.broadcasts import BROADCAST_CHANGES

log = logging.getLogger(__name__)

JOB_PREFIX = "broadcast-"
_LOCK = threading.Lock()  # one plan computation at a time per process


def _tz(ctx: HubContext) -> ZoneInfo:
    return ZoneInfo(ctx.settings.hub.timezone)


# -- jobs ----------------------------------------------------------------------------------
def refresh_plans(context: str) -> int:
    """Materialise, publish every plan (forced), re-derive the per-broadcast jobs."""
    ctx = contexts.context(context)
    if ctx is None:
        return 0
    sent = sync_plans(ctx, force=True)
    sync_jobs(context)
    return sent


def check_plans(context: str) -> int:
    """Materialise and publish only the plans that changed (registry edits, the horizon
    moving on), re-derive the per-broadcast jobs."""
    ctx = contexts.context(context)
    if ctx is None:
        return 0
    sent = sync_plans(ctx, force=False)
    sync_jobs(context)
    return sent


def check_broadcast(context: str, broadcast_id: int) -> list[str]:
    ctx = contexts.context(context)
    if ctx is None:
        return []
    cfg = ctx.settings.broadcasts
    with ctx.db.session() as session:
        checked = deliveries.check_due(
            session,
            now=ctx.clock(),
            grace_s=cfg.report_grace_s,
            notify=ctx.notify,
            tz=_tz(ctx),
            broadcast_id=broadcast_id,
        )
    if checked:
        log.info("broadcast %d: delivery checked for %s", broadcast_id, ", ".join(checked))
    _arm(context, broadcast_id)
    return checked


# -- work ----------------------------------------------------------------------------------
def sync_plans(ctx: HubContext, *, force: bool) -> int:
    """Materialise occurrences and publish the plans that changed (all with ``force``);
    returns how many plans were published."""
    cfg = ctx.settings.broadcasts
    with _LOCK:
        now = ctx.clock()
        with ctx.db.session() as session:
            plans.materialise(session, now=now, tz=_tz(ctx), cfg=cfg)
            out = plans.plans_to_publish(session, now=now, cfg=cfg, tz=_tz(ctx), force=force)
        link = ctx.mqtt
        if link is None:
            if out:
                log.warning("%d plan(s) not published: no MQTT link in this process", len(out))
            return 0
        for p in out:
            link.publish(ctx.topics.plan(p.node_id), p.plan.to_bytes(), qos=1, retain=True)
            if p.changed:
                log.info(
                    "plan for %s: revision %d, %d item(s)", p.node_id, p.plan.revision, len(p.plan.items)
                )
        return len(out)


def after_change(ctx: HubContext) -> None:
    """After a commit that changed broadcasts: publish the plans that changed and, where this
    process runs the scheduler, re-derive the delivery checks."""
    sync_plans(ctx, force=False)
    name = contexts.name_of(ctx)
    if name is not None:
        sync_jobs(name)


def follow_changes(ctx: HubContext) -> None:
    """Run :func:`after_change` after every commit that marks broadcasts changed (once per
    context, however often it is called)."""
    ctx.db.follow(BROADCAST_CHANGES, ("plans", id(ctx)), lambda: after_change(ctx))


def unfollow_changes(ctx: HubContext) -> None:
    ctx.db.unfollow(("plans", id(ctx)))


def sync_jobs(context: str) -> None:
    """One date job per broadcast with an unchecked occurrence; none for the others."""
    ctx, scheduler = contexts.context(context), contexts.scheduler(context)
    if ctx is None or scheduler is None:
        return
    with ctx.db.session(write=False) as session:
        ids = set(
            session.scalars(select(Occurrence.broadcast_id).where(Occurrence.checked_at.is_(None)).distinct())
        )
    for job in scheduler.get_jobs():
        if job.id.startswith(JOB_PREFIX) and int(job.id[len(JOB_PREFIX) :]) not in ids:
            job.remove()
    for broadcast_id in sorted(ids):
        _arm(context, broadcast_id)


def _arm(context: str, broadcast_id: int) -> None:
    ctx, scheduler = contexts.context(context), contexts.scheduler(context)
    if ctx is None or scheduler is None:
        return
    with ctx.db.session(write=False) as session:
        due = deliveries.next_deadline(
            session, broadcast_id=broadcast_id, grace_s=ctx.settings.broadcasts.report_grace_s
        )
    job_id = f"{JOB_PREFIX}{broadcast_id}"
    if due is None:
        # A scheduler not started yet keeps every add as a pending copy: remove them all.
        with contextlib.suppress(JobLookupError):
            while True:
                scheduler.remove_job(job_id)
        return
    scheduler.add_job(
        check_broadcast,
        "date",
        run_date=due + timedelta(milliseconds=50),
        args=[context, broadcast_id],
        id=job_id,
        replace_existing=True,
        misfire_grace_time=None,
        coalesce=True,
    )


# -- wiring --------------------------------------------------------------------------------
def install(scheduler: BaseScheduler, ctx: HubContext, name: str) -> None:
    """Add the broadcast jobs to the hub's scheduler (called by ``build_scheduler``, which has
    registered ``ctx`` and ``scheduler`` under ``name``)."""
    follow_changes(ctx)
    every = ctx.settings.broadcasts.plan_republish_s
    scheduler.add_job(
        refresh_plans,
        "interval",
        seconds=every,
        args=[name],
        id="plans",
        replace_existing=True,
        coalesce=True,
        misfire_grace_time=max(1, int(every)),
    )
    check = ctx.settings.broadcasts.plan_check_s
    scheduler.add_job(
        check_plans,
        "interval",
        seconds=check,
        args=[name],
        id="plans-check",
        replace_existing=True,
        coalesce=True,
        misfire_grace_time=max(1, int(check)),
    )
    scheduler.add_job(
        refresh_plans,
        "date",
        run_date=datetime.now(UTC) + timedelta(seconds=0.2),
        args=[name],
        id="plans-at-start",
        misfire_grace_time=None,
    )
