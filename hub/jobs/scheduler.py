"""The hub's one scheduler: APScheduler 3 ``BackgroundScheduler``, memory job store.

The jobs are module-level functions with one primitive argument, the name under which the
process registered its :class:`HubContext` (``jobs/contexts.py``), so they could move to a
persistent job store unchanged. They are derived from the settings and the tables at start-up;
each one coalesces missed runs and never overlaps itself.

On PostgreSQL several hub processes may have the scheduler role; only the one holding the
scheduler lock (``hub/leases.py``) builds and runs a scheduler, and its jobs are **fenced** by
that lock: before each run the executor asks the lock's connection whether the lock is still
held (a job of a process that lost it does not start, and the election is woken to give the
role up), and every commit a job makes checks, inside its own transaction, that the lock's
session still holds the lock (:class:`~thanthien.hub.leases.Fenced` rolls it back otherwise).
So two schedulers never both change the tables, even for the moment between a lost lock and
the election noticing it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import event
from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.jobs import broadcasts, contexts, fleet, maintenance, notify

log = logging.getLogger(__name__)


class Fence(Protocol):
    """What fences the jobs (``hub/leases.Lease``)."""

    def held(self) -> bool:
        """Asked before each job run: does this process still hold the lock?"""

    def verify(self, session: Session) -> None:
        """Called before each commit of a job: raise unless the lock is still held."""


_RUNNING = threading.local()  # the fence of the job this thread runs (executor threads only)


def _fence_commit(session: Session) -> None:
    fence: Fence | None = getattr(_RUNNING, "fence", None)
    if fence is not None:
        fence.verify(session)


class FencedExecutor(ThreadPoolExecutor):
    """APScheduler's thread pool, with every run fenced (see the module): the run starts only
    while ``fence.held()``, and its commits are checked with ``fence.verify``. A run refused
    calls ``on_lost`` (the election gives the role up) and counts as done, not failed."""

    def __init__(self, fence: Fence, on_lost: Callable[[], None], max_workers: int = 10) -> None:
        super().__init__(max_workers)
        self._fence = fence
        self._on_lost = on_lost
        if not event.contains(Session, "before_commit", _fence_commit):
            event.listen(Session, "before_commit", _fence_commit)

    def _run_fenced(self, job: Any, run_times: list[datetime]) -> list[Any]:
        if not self._fence.held():
            log.error("job %s not run: this process no longer holds the scheduler lock", job.id)
            self._on_lost()
            return []
        _RUNNING.fence = self._fence
        try:
            return run_job(job, job._jobstore_alias, run_times, self._logger.name)
        finally:
            _RUNNING.fence = None

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def done(future: Any) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, getattr(exc, "__traceback__", None))
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(self._run_fenced, job, run_times).add_done_callback(done)


def build_scheduler(ctx: HubContext, name: str = "hub", *, fence: Fence | None = None,
                    on_fenced: Callable[[], None] = lambda: None) -> BackgroundScheduler:
    """A scheduler (not started) with every job, registered under ``name``; with ``fence``,
    its jobs run fenced by that lock (``on_fenced`` is called when a run found it gone)."""
    # APScheduler logs every run at INFO (a line a second here); failures still show as errors.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    s = ctx.settings
    executors = {"default": FencedExecutor(fence, on_fenced)} if fence is not None else {}
    scheduler = BackgroundScheduler(timezone="UTC", executors=executors, job_defaults={
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
    fleet.install(scheduler, ctx, name)  # node configs rebuilt from the registry and published
    return scheduler


def unregister_context(name: str) -> None:
    """Jobs that start from now on find no context and return (the hub is stopping)."""
    contexts.unregister(name)
    notify.stop(name)  # the SMS gateway (and a gammu-smsd the hub runs)
