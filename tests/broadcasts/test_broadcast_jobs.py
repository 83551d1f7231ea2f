"""The scheduler's broadcast jobs are derived from the tables: rebuilt at start-up, one
delivery check per broadcast with an unchecked occurrence, never skipped when late."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from broadcasts.support import APPROVER, DRAFTER, media_row, speakers, spec
from thanthien.hub.jobs import broadcasts as broadcast_jobs
from thanthien.hub.jobs.scheduler import build_scheduler, unregister_context
from thanthien.hub.services import broadcasts

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def scheduler(ctx):
    s = build_scheduler(ctx, "jobs-test")  # built, not started: jobs are only inspected
    yield s
    unregister_context("jobs-test")


def approved(ctx, **over) -> int:
    with ctx.db.session() as s:
        sha = media_row(s, ctx.clock(), name=str(over), duration_s=20.0)
        b = broadcasts.create_broadcast(
            s, spec=spec(sha, **over), actor=DRAFTER, now=ctx.clock(), tz=TZ, cfg=ctx.settings.broadcasts
        )
        broadcasts.approve_broadcast(
            s, broadcast_id=b.id, actor=APPROVER, now=ctx.clock(), tz=TZ, cfg=ctx.settings.broadcasts
        )
        return b.id


def test_jobs_are_rebuilt_from_the_tables_with_a_check_at_each_next_deadline(
    ctx, scheduler: BackgroundScheduler
):
    with ctx.db.session() as s:
        speakers(s, {"ban-a": ["loa-1"]})
    start = ctx.clock() + timedelta(minutes=30)
    once = approved(ctx, schedule_kind="once", local_time=None, start_at=start)
    daily = approved(ctx, local_time="10:00")
    assert {j.id for j in scheduler.get_jobs()} >= {"plans", "plans-check", "plans-at-start"}
    broadcast_jobs.refresh_plans("jobs-test")  # what the start-up job does
    jobs = {j.id: j for j in scheduler.get_jobs() if j.id.startswith(broadcast_jobs.JOB_PREFIX)}
    assert set(jobs) == {f"broadcast-{once}", f"broadcast-{daily}"}
    grace = ctx.settings.broadcasts.report_grace_s
    check = jobs[f"broadcast-{once}"]
    assert check.trigger.run_date == start + timedelta(seconds=20 + grace, milliseconds=50)
    assert check.misfire_grace_time is None and check.coalesce is True
    assert check.args == ("jobs-test", once)  # primitive arguments only


def test_a_delivery_check_re_arms_for_the_next_occurrence_and_drops_the_job_when_none_is_left(
    ctx, scheduler: BackgroundScheduler
):
    with ctx.db.session() as s:
        speakers(s, {"ban-a": ["loa-1"]})
    bid = approved(ctx, schedule_kind="once", local_time=None, start_at=ctx.clock() + timedelta(minutes=1))
    broadcast_jobs.refresh_plans("jobs-test")
    assert scheduler.get_job(f"broadcast-{bid}") is not None
    ctx.clock.advance(60 + 20 + ctx.settings.broadcasts.report_grace_s)
    checked = broadcast_jobs.check_broadcast("jobs-test", bid)
    assert len(checked) == 1
    assert scheduler.get_job(f"broadcast-{bid}") is None
