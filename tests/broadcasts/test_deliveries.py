"""Playback reports (SQLite and PostgreSQL): stored once through the ingest handler and acked
as playback, the delivery report per occurrence, the broadcast_missed alarm."""

from __future__ import annotations

import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from hub.hub_helpers import incoming
from sqlalchemy import func, select

from broadcasts.support import APPROVER, DRAFTER, media_row, speakers, spec
from thanthien.hub.db.models import Alarm, Occurrence, PlaybackReport
from thanthien.hub.ingest.base import Outcome
from thanthien.hub.ingest.playback import handle
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import broadcasts, deliveries, plans
from thanthien.hub.services.schedule import BroadcastSettings
from thanthien.protocol import Topics
from thanthien.protocol.payloads import PlaybackEvent

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CFG = BroadcastSettings()
T = Topics()
NODES = ["loa-1", "loa-2", "loa-3", "loa-4"]


def _occurrence(ctx, nodes: list[str]) -> Occurrence:
    """One approved one-off broadcast to ``nodes``, 10 minutes ahead, 30 s long."""
    with ctx.db.session() as s:
        speakers(s, {"ban-a": nodes})
        sha = media_row(s, ctx.clock(), duration_s=30.0)
        b = broadcasts.create_broadcast(
            s,
            spec=spec(
                sha, schedule_kind="once", local_time=None, start_at=ctx.clock() + timedelta(minutes=10)
            ),
            actor=DRAFTER,
            now=ctx.clock(),
            tz=TZ,
            cfg=CFG,
        )
        broadcasts.approve_broadcast(
            s, broadcast_id=b.id, actor=APPROVER, now=ctx.clock(), tz=TZ, cfg=CFG
        )
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
        o = s.scalars(select(Occurrence)).one()
        s.expunge(o)
        return o


@pytest.fixture
def occ(ctx) -> Occurrence:
    """One approved one-off broadcast to four speakers, 10 minutes ahead, 30 s long."""
    return _occurrence(ctx, NODES)


def event(o: Occurrence, node: str, status: str, offset_s: float = 0.0, event_id=None) -> PlaybackEvent:
    return PlaybackEvent(
        event_id=event_id or uuid.uuid4(),
        node=node,
        occurrence_id=o.id,
        status=status,
        at=o.start_at + timedelta(seconds=offset_s),
        scheduled_at=o.start_at,
        media_sha256=o.media_sha256,
        detail="",
    )


def ingest(ctx, events: list[PlaybackEvent]) -> Outcome:
    out = Outcome()
    with ctx.db.session() as s:
        handle(s, ctx, [incoming(T.playback(e.node), e.to_bytes(), ctx.clock()) for e in events], out)
    return out


def report(ctx, o: Occurrence) -> deliveries.DeliveryReport:
    with ctx.db.session() as s:
        r = deliveries.report(s, viewer=SYSTEM, occurrence_id=o.id)
        s.expunge_all()
        return r


def check(ctx) -> list[str]:
    with ctx.db.session() as s:
        return deliveries.check_due(s, now=ctx.clock(), grace_s=CFG.report_grace_s, notify=False, tz=TZ)


def active_alarms(ctx) -> list[Alarm]:
    with ctx.db.session() as s:
        rows = list(
            s.scalars(select(Alarm).where(Alarm.kind == "broadcast_missed", Alarm.cleared_at.is_(None)))
        )
        s.expunge_all()
        return rows


def test_a_repeated_report_is_stored_once_and_acked_as_playback_each_time(ctx, occ):
    e = event(occ, "loa-1", "started", 0.01)
    first, second = ingest(ctx, [e]), ingest(ctx, [e])
    assert first.acks_for("playback") == second.acks_for("playback") == {"loa-1": [e.event_id]}
    assert not first.acks_for("rating")
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(PlaybackReport)) == 1


def test_the_report_shows_played_failed_missed_and_the_spread_of_start_times(ctx, occ):
    ingest(
        ctx,
        [
            event(occ, "loa-1", "started", 0.004),
            event(occ, "loa-1", "finished", 30.0),
            event(occ, "loa-2", "started", -0.002),
            event(occ, "loa-2", "finished", 30.0),
            event(occ, "loa-3", "failed", 0.0),
        ],
    )
    r = report(ctx, occ)
    assert {d.node_id: d.status for d in r.deliveries} == {
        "loa-1": "finished",
        "loa-2": "finished",
        "loa-3": "failed",
        "loa-4": "pending",
    }
    assert r.start_spread_s == pytest.approx(0.006, abs=1e-6)
    assert r.max_start_error_s == pytest.approx(0.004, abs=1e-6)
    ctx.clock.advance(10 * 60 + 30 + CFG.report_grace_s)
    assert check(ctx) == [occ.id]
    r = report(ctx, occ)
    assert (r.counts["finished"], r.counts["failed"], r.counts["missed"], r.counts["pending"]) == (2, 1, 1, 0)
    assert next(d for d in r.deliveries if d.node_id == "loa-4").detail == deliveries.NO_REPORT


def test_an_occurrence_not_played_everywhere_raises_an_alarm_that_late_reports_clear(ctx, occ):
    for node in NODES[:3]:
        ingest(ctx, [event(occ, node, "started"), event(occ, node, "finished", 30)])
    ctx.clock.advance(10 * 60 + 30 + CFG.report_grace_s - 1)
    assert check(ctx) == [] and active_alarms(ctx) == []
    ctx.clock.advance(1)
    assert check(ctx) == [occ.id]
    [alarm] = active_alarms(ctx)
    assert alarm.subject == occ.id and "1/4 cụm loa không phát (loa-4)" in alarm.message
    ctx.clock.advance(300)  # loa-4 was cut off; it played on its own clock and reports when back
    ingest(ctx, [event(occ, "loa-4", "started", 0.003), event(occ, "loa-4", "finished", 30)])
    assert active_alarms(ctx) == []
    assert report(ctx, occ).counts["finished"] == 4


def test_a_started_report_arriving_after_the_final_one_keeps_the_final_status(ctx, occ):
    started, finished = event(occ, "loa-1", "started", 0.01), event(occ, "loa-1", "interrupted", 12)
    ingest(ctx, [finished])
    ingest(ctx, [started])
    d = next(d for d in report(ctx, occ).deliveries if d.node_id == "loa-1")
    assert d.status == "interrupted" and d.started_at == started.at


def _interleaved(ctx, first: PlaybackEvent, meanwhile: PlaybackEvent) -> None:
    """Two ingest workers sharing the subscription: one reads the delivery for ``first``, the
    other stores ``meanwhile`` and commits, then the first writes and commits."""
    if ctx.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: its workers never interleave")
    out = Outcome()
    with ctx.db.session() as s, s.no_autoflush:  # as the worker runs it: nothing written before the end
        handle(s, ctx, [incoming(T.playback(first.node), first.to_bytes(), ctx.clock())], out)
        ingest(ctx, [meanwhile])
    assert out.acks_for("playback") == {first.node: [first.event_id]}


def test_a_start_written_after_another_worker_committed_the_end_keeps_the_final_status(ctx, occ):
    started, finished = event(occ, "loa-1", "started", 0.01), event(occ, "loa-1", "finished", 30)
    _interleaved(ctx, started, finished)
    d = next(d for d in report(ctx, occ).deliveries if d.node_id == "loa-1")
    assert (d.status, d.started_at, d.ended_at) == ("finished", started.at, finished.at)


def test_an_end_written_after_another_worker_committed_the_start_keeps_the_start_time(ctx, occ):
    started, finished = event(occ, "loa-1", "started", 0.01), event(occ, "loa-1", "finished", 30)
    _interleaved(ctx, finished, started)
    d = next(d for d in report(ctx, occ).deliveries if d.node_id == "loa-1")
    assert (d.status, d.started_at, d.ended_at) == ("finished", started.at, finished.at)


def test_a_report_naming_another_node_than_its_topic_is_dead_lettered(ctx, occ):
    e = event(occ, "loa-2", "started")
    out = Outcome()
    with ctx.db.session() as s:
        handle(s, ctx, [incoming(T.playback("loa-1"), e.to_bytes(), ctx.clock())], out)
    assert not out.acks_for("playback") and out.counts[("thanthien_hub_dead_letters_total", "playback")] == 1


def test_late_reports_in_one_batch_leave_the_alarm_naming_the_first_hundred_still_silent(ctx):
    nodes = [f"loa-{i:03d}" for i in range(1, 106)]
    o = _occurrence(ctx, nodes)
    ctx.clock.advance(10 * 60 + 30 + CFG.report_grace_s)
    assert check(ctx) == [o.id]
    [alarm] = active_alarms(ctx)
    assert "105/105 cụm loa" in alarm.message and alarm.details["nodes"] == nodes[:100]
    ingest(ctx, [event(o, n, "finished", 30) for n in nodes[:3]])  # one batch, written at its end
    [alarm] = active_alarms(ctx)
    assert "102/105 cụm loa không phát (loa-004, loa-005," in alarm.message
    assert alarm.details["nodes"] == nodes[3:103]


def test_a_batch_writes_its_deliveries_after_its_node_rows(ctx, occ, monkeypatch):
    """Every worker takes its row locks in one order (the node rows, then the deliveries), so
    two workers sharing the nodes' reports cannot deadlock."""
    from thanthien.hub.ingest import worker

    writes: list[str] = []

    def recorded(name, write):
        def run(*args, **kwargs):
            writes.append(name)
            return write(*args, **kwargs)
        return run

    monkeypatch.setattr(worker, "_write_node_bookkeeping", recorded("nodes", worker._write_node_bookkeeping))
    monkeypatch.setattr(deliveries, "write_rows", recorded("deliveries", deliveries.write_rows))
    batch = [incoming(T.playback(n), event(occ, n, "started", 0.01).to_bytes(), ctx.clock()) for n in NODES]
    outcome = worker.commit_batch(ctx, batch)
    assert set(outcome.acks_for("playback")) == set(NODES)
    assert writes == ["nodes", "deliveries"]
    assert report(ctx, occ).counts["started"] == 4
