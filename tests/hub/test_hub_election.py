"""The scheduler of several hub processes (in one test process): exactly one runs it, elected by
a PostgreSQL advisory lock; a process that loses the lock gives it up and the other takes over;
jobs are fenced by the lock (not started without it, their commits refused once it is gone).
On SQLite there is no election."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR
from sqlalchemy import func, select

from hub.hub_helpers import hub_settings
from hub.pg_private import migrated_database, private_database
from support import EventCollector, wait_until
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import DeadLetter
from thanthien.hub.db.session import Database
from thanthien.hub.jobs.scheduler import build_scheduler, unregister_context
from thanthien.hub.leases import Fenced, Lease
from thanthien.hub.runtime import HubRuntime

RETRY_S = 0.2


@pytest.fixture
def pg_db() -> Iterator[str]:
    with migrated_database("thanthien_election") as url:
        yield url


def scheduler_hub(tmp_path: Path, url: str, name: str) -> HubRuntime:
    runtime = HubRuntime(hub_settings(tmp_path / name, database={"url": url}), roles=("scheduler",),
                         election_retry_s=RETRY_S)
    runtime.start()
    return runtime


def test_a_lone_hub_on_sqlite_runs_the_scheduler_without_an_election(tmp_path):
    runtime = HubRuntime(hub_settings(tmp_path), roles=("scheduler",))
    runtime.start()
    try:
        status = runtime.role_status()
        assert status["scheduler"] == {"this_process": True, "election": "none: SQLite, one process"}
        assert status["retained_state"] is None  # no ingest in this process
        assert runtime.ctx.metrics.value("thanthien_hub_scheduler_leader") == 1
        assert runtime.scheduler is not None and runtime.scheduler.running
        assert runtime.healthy()
    finally:
        runtime.stop()
    assert runtime.ctx.metrics.value("thanthien_hub_scheduler_leader") == 0


@pytest.mark.postgres
def test_one_of_two_processes_runs_the_scheduler_and_the_other_takes_over_when_it_loses_the_lock(
        tmp_path, pg_db):
    first = scheduler_hub(tmp_path, pg_db, "a")
    second = scheduler_hub(tmp_path, pg_db, "b")
    try:
        assert first.leads_scheduler and first.scheduler is not None and first.scheduler.running
        assert not second.leads_scheduler and second.scheduler is None
        assert second.healthy()  # waiting for the role is not ill health
        assert first.ctx.metrics.value("thanthien_hub_scheduler_leader") == 1
        assert second.ctx.metrics.value("thanthien_hub_scheduler_leader") == 0
        lead, wait = first.role_status()["scheduler"], second.role_status()["scheduler"]
        assert lead["this_process"] is True and lead["election"] == "postgresql advisory lock"
        assert wait["this_process"] is False and wait["holder"] == lead["holder"]
        assert first.scheduler_election is not None
        old = first.scheduler

        # the leader's lock session ends under it (a server restart, a cut connection): it gives
        # the scheduler up at once, and one of the two (both keep trying) takes the lock
        with Database(pg_db).engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({first.scheduler_election.lease.backend_pid})")
        assert wait_until(lambda: old is not None and not old.running
                          and first.leads_scheduler != second.leads_scheduler, timeout=10)
        assert first.ctx.metrics.value("thanthien_hub_role_changes_total", role="scheduler",
                                       change="given_up") == 1
        leader, follower = (first, second) if first.leads_scheduler else (second, first)
        assert leader.scheduler is not None and leader.scheduler.running and leader.scheduler is not old
        assert leader.ctx.metrics.value("thanthien_hub_scheduler_leader") == 1
        assert follower.ctx.metrics.value("thanthien_hub_scheduler_leader") == 0
        # the leader stops: the other one takes over
        leader.stop()
        assert wait_until(lambda: follower.leads_scheduler, timeout=10)
        assert follower.scheduler is not None and follower.scheduler.running
        assert follower.ctx.metrics.value("thanthien_hub_scheduler_leader") == 1
    finally:
        second.stop()
        first.stop()


@pytest.mark.postgres
def test_jobs_are_fenced_by_the_lock(tmp_path, pg_db):
    db = Database(pg_db)
    ctx = HubContext(settings=hub_settings(tmp_path, database={"url": pg_db}), db=db)
    lease = Lease(pg_db, "scheduler")
    assert lease.acquire()
    fenced = threading.Event()
    ran = EventCollector[str]()
    committed = EventCollector[str]()
    errors = EventCollector[str]()
    scheduler = build_scheduler(ctx, "fence-test", fence=lease, on_fenced=fenced.set)
    scheduler.add_listener(lambda e: errors.add(repr(e.exception)), mask=EVENT_JOB_ERROR)

    def write(note: str, drop_lock: bool) -> None:
        ran.add(note)
        with db.session() as s:
            if drop_lock:
                lease.release()  # the lock goes while the job runs
            s.add(DeadLetter(received_at=ctx.clock(), topic=note, kind="test", reason=note, size=0,
                             payload=b""))
        committed.add(note)

    try:
        scheduler.start(paused=True)
        for job in scheduler.get_jobs():
            job.remove()  # only the jobs of this test
        scheduler.add_job(write, args=["held", False], id="held")
        scheduler.resume()
        assert committed.wait_count(1)
        scheduler.add_job(write, args=["lost-while-running", True], id="lost")
        assert errors.wait_count(1) and "Fenced" in errors.items[0]
        scheduler.add_job(write, args=["not-held", False], id="refused")
        assert fenced.wait(10)  # the run was refused and the election told
        with db.session(write=False) as s:
            assert list(s.scalars(select(DeadLetter.topic))) == ["held"]
            assert s.scalar(select(func.count()).select_from(DeadLetter)) == 1
        assert ran.snapshot() == ["held", "lost-while-running"] and committed.snapshot() == ["held"]
        with db.session() as s, pytest.raises(Fenced):
            lease.verify(s)
    finally:
        scheduler.shutdown(wait=False)
        unregister_context("fence-test")
        lease.release()
        db.dispose()


@pytest.mark.postgres
def test_a_lock_held_on_another_database_of_the_server_is_not_this_hubs_holder(pg_db):
    with private_database("thanthien_election_other") as other_url:
        other = Lease(other_url, "scheduler", label="hub of another database")
        here = Lease(pg_db, "scheduler")
        try:
            assert other.acquire()
            assert here.holder() is None
            assert here.acquire() and here.held()
            assert here.holder() == here.label and other.holder() == "hub of another database"
        finally:
            here.release()
            other.release()
