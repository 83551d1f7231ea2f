"""Proof of play at the hub (SQLite and PostgreSQL): the levels a speaker reports with its
finished playback are judged into the delivery report (ok, played but silent, amplifier on but
nothing heard), raise the node's speaker_silent alarm and its next good playback clears it;
what really went out (a relay's stream and fallback) is kept."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from broadcasts.support import APPROVER, DRAFTER, media_row, speakers, spec
from broadcasts.test_deliveries import CFG, NODES, TZ, event, ingest, report
from thanthien.hub.db.models import Alarm, Delivery, Occurrence
from thanthien.hub.services import broadcasts, deliveries, plans, proof
from thanthien.protocol.payloads import PlaybackEvent, PlayLevels, SourceSpan

LOUD = [-18.0] * 30
SILENT = [-120.0] * 30
NOISE = [-68.0] * 30


@pytest.fixture
def occ(ctx) -> Occurrence:
    """One approved broadcast to four speakers, 10 minutes ahead, 30 s long."""
    with ctx.db.session() as s:
        speakers(s, {"ban-a": NODES})
        sha = media_row(s, ctx.clock(), duration_s=30.0)
        b = broadcasts.create_broadcast(
            s, spec=spec(sha, schedule_kind="once", local_time=None,
                         start_at=ctx.clock() + timedelta(minutes=10)),
            actor=DRAFTER, now=ctx.clock(), tz=TZ, cfg=CFG)
        broadcasts.approve_broadcast(s, broadcast_id=b.id, actor=APPROVER, now=ctx.clock(), tz=TZ, cfg=CFG)
        plans.materialise(s, now=ctx.clock(), tz=TZ, cfg=CFG)
        o = s.scalars(select(Occurrence)).one()
        s.expunge(o)
        return o


def finished(o: Occurrence, node: str, sent: list[float], heard: list[float] | None = None,
             sources: list[SourceSpan] | None = None) -> PlaybackEvent:
    return event(o, node, "finished", 30.0).model_copy(update={
        "event_id": uuid.uuid4(), "levels": PlayLevels(sent_dbfs=sent, heard_dbfs=heard), "sources": sources})


def silent_alarms(ctx) -> dict[str, Alarm]:
    with ctx.db.session() as s:
        active = select(Alarm).where(Alarm.kind == proof.ALARM_KIND, Alarm.cleared_at.is_(None))
        rows = list(s.scalars(active))
        s.expunge_all()
        return {a.subject: a for a in rows}


def delivery(ctx, o: Occurrence, node: str):
    return next(d for d in report(ctx, o).deliveries if d.node_id == node)


def test_loud_output_that_the_microphone_heard_is_ok_and_raises_nothing(ctx, occ):
    ingest(ctx, [event(occ, "loa-1", "started"), finished(occ, "loa-1", LOUD, [-24.0] * 30)])
    d = delivery(ctx, occ, "loa-1")
    assert d.proof == "ok" and d.levels["sent_dbfs"] == LOUD
    assert silent_alarms(ctx) == {}


def test_silent_output_is_played_but_silent_with_an_alarm(ctx, occ):
    ingest(ctx, [event(occ, "loa-2", "started"), finished(occ, "loa-2", SILENT)])
    d = delivery(ctx, occ, "loa-2")
    assert d.status == "finished" and d.proof == "silent"
    assert report(ctx, occ).proof_counts == {"ok": 0, "silent": 1, "unheard": 0, "unchecked": 0}
    alarm = silent_alarms(ctx)["loa-2"]
    assert alarm.severity == "major" and "phát nhưng không có tiếng" in alarm.message


def test_amplifier_on_but_nothing_heard_is_unheard_with_an_alarm(ctx, occ):
    ingest(ctx, [finished(occ, "loa-3", LOUD, NOISE)])
    d = delivery(ctx, occ, "loa-3")
    assert d.proof == "unheard" and "0/30" in d.proof_detail
    assert "không nghe thấy tiếng" in silent_alarms(ctx)["loa-3"].message


def test_without_a_microphone_loud_output_is_ok(ctx, occ):
    ingest(ctx, [finished(occ, "loa-1", LOUD)])
    assert delivery(ctx, occ, "loa-1").proof == "ok"


def test_a_report_without_levels_is_left_unjudged(ctx, occ):
    ingest(ctx, [event(occ, "loa-1", "started"), event(occ, "loa-1", "finished", 30)])
    assert delivery(ctx, occ, "loa-1").proof is None
    assert report(ctx, occ).proof_counts["unchecked"] == 1


def test_the_nodes_next_good_playback_clears_its_alarm(ctx, occ):
    ingest(ctx, [finished(occ, "loa-4", LOUD, NOISE)])
    assert "loa-4" in silent_alarms(ctx)
    with ctx.db.session() as s:  # the next occurrence the node plays, heard this time
        o2 = Occurrence(id=f"{occ.id}-2", broadcast_id=occ.broadcast_id,
                        start_at=occ.start_at + timedelta(hours=1), duration_s=30.0,
                        media_sha256=occ.media_sha256, priority="normal", volume=100, title="Bản tin chiều")
        s.add(o2)
        s.flush()
        s.add(Delivery(occurrence_id=o2.id, node_id="loa-4"))
        s.expunge(o2)
    ingest(ctx, [finished(o2, "loa-4", LOUD, [-25.0] * 30)])
    assert silent_alarms(ctx) == {}


def test_what_really_went_out_is_kept_with_the_delivery(ctx, occ):
    spans = [SourceSpan(source="stream", seconds=12.0),
             SourceSpan(source="fallback", seconds=18.0, reason="luồng mất tín hiệu")]
    ingest(ctx, [finished(occ, "loa-1", LOUD, sources=spans)])
    d = delivery(ctx, occ, "loa-1")
    assert deliveries.describe_sources(d) == "tiếp sóng 12 s → tệp dự phòng 18 s (luồng mất tín hiệu)"


@pytest.mark.parametrize(("sent", "heard", "verdict"), [
    ([-20.0] * 9 + [-120.0], None, "ok"),
    ([-20.0] + [-120.0] * 9, None, "silent"),
    ([-20.0] * 10, [-30.0] * 5 + [-68.0] * 5, "ok"),
    ([-20.0] * 10, [-30.0] * 4 + [-68.0] * 6, "unheard"),
])
def test_judgement_thresholds(sent, heard, verdict):
    assert proof.judge(PlayLevels(sent_dbfs=sent, heard_dbfs=heard), proof.ProofSettings()).verdict == verdict
