"""A speaker node whose clock is hours off (a Pi without an RTC after a power cut): it plays no
scheduled broadcast at the wrong wall-clock time, reports none missed before it is due, still
plays play-now and emergencies, and resumes on the right time once its clock is good. Real
edge agent, real Mosquitto, media over loopback HTTP; the sink records the machine's time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from clock_support import HOURS, NodeClock, beacon
from speaker_support import (
    Hub,
    MediaServer,
    events,
    in_s,
    item,
    make_plan,
    start_agent,
    wait_event,
    wav_and_sha,
)

from support import wait_until
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.audio import WavSink

pytestmark = pytest.mark.timeout(60)

START_TOLERANCE_S = 0.05


class Rig:
    """A speaker node on ``clock`` (NTP says not synchronised) with one clip served."""

    def __init__(self, tmp: Path, port: int, hub_http: MediaServer, clock: NodeClock) -> None:
        self.clock = clock
        data, self.sha = wav_and_sha(0.3)
        hub_http.files[f"/api/media/{self.sha}"] = data
        self.sink = WavSink(tmp / "sink", realtime=True)
        self.agent: EdgeAgent = start_agent(tmp / "node", port, hub_http, self.sink, wall_clock=clock.time,
                                            ntp=clock.ntp, check_s=0.2)

    @property
    def held(self) -> int | None:
        return self.agent.stats.held_broadcasts

    def started_at(self, n: int = 0) -> datetime:
        return datetime.fromisoformat(str(self.sink.entries()[n]["started_at"]))

    def close(self) -> None:
        self.agent.stop()


@pytest.fixture
def rig_for(tmp_path: Path, broker, hub_http) -> Iterator:
    rigs: list[Rig] = []

    def make(offset_s: float, synced: bool | None = False) -> Rig:
        rigs.append(Rig(tmp_path, broker.port, hub_http, NodeClock(offset_s, synced)))
        return rigs[-1]

    yield make
    for rig in rigs:
        rig.close()


def test_node_hours_ahead_holds_the_plan_and_reports_nothing_missed(rig_for, hub: Hub):
    rig = rig_for(3 * HOURS)
    soon = item("soon", in_s(0.8), rig.sha)  # on the node's clock: three hours ago
    between = item("between", in_s(1 * HOURS), rig.sha)  # would be "missed" hours before it is due
    early = item("early", in_s(3 * HOURS + 0.5), rig.sha)  # would play now, three hours early
    hub.publish_plan(make_plan(soon, between, early))
    assert wait_until(lambda: rig.held == 3)
    assert wait_until(lambda: time.time() > soon.start_at.timestamp() + 1.0)
    assert rig.sink.entries() == []
    assert events(hub.reports) == []


def test_play_now_and_emergency_play_while_the_clock_is_untrusted(rig_for, hub: Hub):
    rig = rig_for(3 * HOURS)
    hub.publish_plan(make_plan(item("scheduled", in_s(0.5), rig.sha)))
    assert wait_until(lambda: rig.held == 1)
    normal = hub.command("play-now", occurrence_id="now-1", broadcast_id=5, media_sha256=rig.sha)
    assert normal.ok, normal.error
    wait_event(hub.reports, "now-1", "finished")
    alarm = hub.command("play-now", occurrence_id="sos-1", broadcast_id=6, media_sha256=rig.sha,
                        priority="emergency", title="Báo lũ")
    assert alarm.ok, alarm.error
    wait_event(hub.reports, "sos-1", "finished")
    assert {e.occurrence_id for e in events(hub.reports)} == {"now-1", "sos-1"}
    assert len(rig.sink.entries()) == 2


def test_held_broadcast_plays_at_its_true_time_once_ntp_steps_the_clock(rig_for, hub: Hub):
    rig = rig_for(3 * HOURS)
    it = item("o1", in_s(2.5), rig.sha)  # three hours in the past on the node's clock
    hub.publish_plan(make_plan(it))
    assert wait_until(lambda: rig.held == 1)
    rig.clock.sync()
    wait_event(hub.reports, "o1", "finished")
    started = wait_event(hub.reports, "o1", "started")
    assert abs((rig.started_at() - it.start_at).total_seconds()) < START_TOLERANCE_S
    assert started.detail == "" and started.clock_uncertain is False


def test_broadcast_whose_time_truly_passed_is_missed_only_once_the_clock_is_good(rig_for, hub: Hub):
    rig = rig_for(-3 * HOURS)  # behind: the node thinks the broadcast is hours ahead
    past = item("past", in_s(-400), rig.sha)  # really 400 s ago: beyond max_delay_s (300 s)
    hub.publish_plan(make_plan(past))
    beacon(hub.link)  # the hub's time: 400 s past is due, so it counts as held
    assert wait_until(lambda: rig.held == 1)
    assert events(hub.reports) == []
    rig.clock.sync()
    missed = wait_event(hub.reports, "past", "missed")
    assert missed.scheduled_at == past.start_at
    assert [e.status for e in events(hub.reports)] == ["missed"]
    assert rig.sink.entries() == []


def test_play_now_start_is_moved_to_the_hubs_time_on_a_clock_hours_behind(rig_for, hub: Hub):
    rig = rig_for(-3 * HOURS)
    assert rig.agent.clock_trust.hub_offset_s() is None
    for _ in range(5):  # QoS 0: send the beacon until the node has it
        beacon(hub.link)
        if wait_until(lambda: rig.agent.clock_trust.hub_offset_s() is not None, timeout=2):
            break
    start = in_s(1.5)
    result = hub.command("play-now", occurrence_id="together", broadcast_id=9, media_sha256=rig.sha,
                         start_at=start.isoformat())
    assert result.ok, result.error
    wait_event(hub.reports, "together", "finished")
    assert abs((rig.started_at() - start).total_seconds()) < 0.25  # the hub's beacon transit counts


def test_speaker_reports_the_held_broadcasts_in_its_status_and_telemetry(rig_for, hub: Hub):
    rig = rig_for(3 * HOURS)
    hub.publish_plan(make_plan(item("a", in_s(0.5), rig.sha), item("b", in_s(60), rig.sha),
                               item("c", in_s(5 * HOURS), rig.sha)))  # c: not due even on the node
    assert wait_until(lambda: rig.held == 2)
    status = hub.command("speaker-status")
    assert status.ok and status.result["held"] == 2 and status.result["clock_trusted"] is False
    telemetry = rig.agent.publish_telemetry()
    assert telemetry is not None
    assert telemetry.clock_trusted is False and telemetry.held_broadcasts == 2


def test_clock_within_the_tolerance_of_the_hub_plays_the_plan_without_ntp(rig_for, hub: Hub):
    rig = rig_for(1.0)  # a second ahead, NTP not synchronised
    it = item("o1", in_s(3.0), rig.sha)
    hub.publish_plan(make_plan(it))
    for _ in range(5):
        beacon(hub.link)
        if wait_until(lambda: rig.agent.clock_trust.trusted(), timeout=2):
            break
    assert rig.agent.clock_trust.view().reason == "hub"
    wait_event(hub.reports, "o1", "finished")
    on_node_clock = rig.started_at() + timedelta(seconds=rig.clock.offset_s)
    assert abs((on_node_clock - it.start_at).total_seconds()) < START_TOLERANCE_S
