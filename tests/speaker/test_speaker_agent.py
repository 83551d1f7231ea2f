"""The speaker as a device of the real edge agent: the retained plan over a real Mosquitto,
media over loopback HTTP, reports through the outbox, play-now and a plan that survives a
restart while the broker is down."""

from __future__ import annotations

from datetime import datetime

import pytest
from speaker_support import TOKEN, Hub, events, in_s, item, make_plan, start_agent, wait_event, wav_and_sha

from support import wait_until
from thanthien.edge.audio import WavSink

pytestmark = pytest.mark.timeout(60)

START_TOLERANCE_S = 0.05


def test_agent_plays_the_retained_plan_and_reports_each_occurrence(tmp_path, broker, hub, hub_http):
    data, sha = wav_and_sha(0.3)
    hub_http.files[f"/api/media/{sha}"] = data
    sink = WavSink(tmp_path / "sink", realtime=True)
    it = item("occ-1", in_s(1.5), sha)
    hub.publish_plan(make_plan(it))  # retained: the node gets it when it subscribes
    agent = start_agent(tmp_path / "node", broker.port, hub_http, sink)
    try:
        wait_event(hub.reports, "occ-1", "finished")
        started = wait_event(hub.reports, "occ-1", "started")
        entry = sink.entries()[0]
        actual = datetime.fromisoformat(str(entry["started_at"]))
        assert abs((actual - it.start_at).total_seconds()) < START_TOLERANCE_S
        assert abs((started.at - actual).total_seconds()) < 0.01
        assert hub_http.requests[0][1] == f"Bearer {TOKEN}"
        assert "speaker" in agent.state("online").capabilities
    finally:
        agent.stop()


def test_emergency_play_now_command_interrupts_a_normal_broadcast(tmp_path, broker, hub, hub_http):
    long, sha_long = wav_and_sha(4.0, 440)
    alarm, sha_alarm = wav_and_sha(0.3, 990)
    hub_http.files.update({f"/api/media/{sha_long}": long, f"/api/media/{sha_alarm}": alarm})
    sink = WavSink(tmp_path / "sink", realtime=True)
    agent = start_agent(tmp_path / "node", broker.port, hub_http, sink)
    try:
        hub.publish_plan(make_plan(item("normal-1", in_s(1.0), sha_long, duration=4.0)))
        wait_event(hub.reports, "normal-1", "started")
        result = hub.command("play-now", occurrence_id="emergency-1", broadcast_id=7,
                             media_sha256=sha_alarm, priority="emergency", title="Báo cháy")
        assert result.ok, result.error
        assert result.result["queued"] is True
        interrupted = wait_event(hub.reports, "normal-1", "interrupted")
        assert "khẩn cấp" in interrupted.detail and "Báo cháy" in interrupted.detail
        wait_event(hub.reports, "emergency-1", "finished")
        assert [e["interrupted"] for e in sink.entries()] == [True, False]
        status = hub.command("speaker-status")
        assert status.ok and status.result["plan_revision"] == 1
        assert status.result["playing"] is None and status.result["cached_media"] == 2
    finally:
        agent.stop()


def test_play_now_with_bad_arguments_is_refused(tmp_path, broker, hub, hub_http):
    agent = start_agent(tmp_path / "node", broker.port, hub_http, WavSink(tmp_path / "sink"))
    try:
        missing = hub.command("play-now", occurrence_id="x", broadcast_id=1)
        assert not missing.ok and "media_sha256" in (missing.error or "")
        bad = hub.command("play-now", occurrence_id="x", broadcast_id=1, media_sha256="0" * 64,
                          priority="loudest")
        assert not bad.ok and "priority" in (bad.error or "")
    finally:
        agent.stop()


def test_test_tone_plays_and_is_not_reported(tmp_path, broker, hub, hub_http):
    data, sha = wav_and_sha(0.2)
    hub_http.files[f"/api/media/{sha}"] = data
    sink = WavSink(tmp_path / "sink", realtime=True)
    agent = start_agent(tmp_path / "node", broker.port, hub_http, sink)
    try:
        tone = hub.command("test-tone", seconds=0.5, volume=30)
        assert tone.ok, tone.error
        # a normal play-now waits for the (normal) tone to end: its report marks the end of both
        after = hub.command("play-now", occurrence_id="after-tone", broadcast_id=3, media_sha256=sha)
        assert after.ok, after.error
        wait_event(hub.reports, "after-tone", "finished")
        tone_entry, after_entry = sink.entries()
        assert tone_entry["volume"] == 30
        assert tone_entry["duration_s"] == pytest.approx(0.5, abs=0.01)
        assert after_entry["label"] == sha[:12]
        assert {e.occurrence_id for e in events(hub.reports)} == {"after-tone"}
    finally:
        agent.stop()


def test_saved_plan_plays_after_a_restart_with_the_broker_down(tmp_path, broker_factory, hub_http):
    private = broker_factory()
    data, sha = wav_and_sha(0.3)
    hub_http.files[f"/api/media/{sha}"] = data
    hub = Hub(private.port)
    first_sink = WavSink(tmp_path / "sink1", realtime=True)
    later = item("later", in_s(4.0), sha)
    agent = start_agent(tmp_path / "node", private.port, hub_http, first_sink)
    try:
        hub.publish_plan(make_plan(item("soon", in_s(1.0), sha), later))
        wait_event(hub.reports, "soon", "finished")  # the media is cached by now
    finally:
        agent.stop()
        hub.link.stop()
    private.stop()
    second_sink = WavSink(tmp_path / "sink2", realtime=True)
    agent = start_agent(tmp_path / "node", private.port, hub_http, second_sink, connected=False)
    try:
        assert agent.outbox is not None
        assert agent.outbox.wait_depth(lambda n: n >= 2 + 2, 10)  # soon's 2 unacked + later's 2
        entries = second_sink.entries()
        assert [e["label"] for e in entries] == [sha[:12]]
        actual = datetime.fromisoformat(str(entries[0]["started_at"]))
        assert abs((actual - later.start_at).total_seconds()) < START_TOLERANCE_S
        assert not agent.link.connected.is_set()  # type: ignore[union-attr]
    finally:
        agent.stop()


def test_set_volume_command_sets_the_volume_the_next_clip_plays_at(tmp_path, broker, hub, hub_http):
    sink = WavSink(tmp_path / "sink", realtime=False)
    agent = start_agent(tmp_path / "node", broker.port, hub_http, sink)
    try:
        result = hub.command("set-volume", volume=40)
        assert result.ok and result.result == {"volume": 40}
        assert hub.command("speaker-status").result["volume"] == 40
        tone_ = hub.command("test-tone", seconds=0.5, volume=50)
        assert tone_.ok
        assert wait_until(lambda: len(sink.entries()) == 1)
        assert sink.entries()[0]["volume"] == 20  # the tone's 50 % of the node's 40 %
    finally:
        agent.stop()


def test_set_volume_without_a_volume_is_refused(tmp_path, broker, hub, hub_http):
    agent = start_agent(tmp_path / "node", broker.port, hub_http, WavSink(tmp_path / "sink"))
    try:
        result = hub.command("set-volume")
        assert not result.ok and "volume" in (result.error or "")
    finally:
        agent.stop()


def test_amplifier_command_holds_the_relay_on_until_switched_off(tmp_path, broker, hub, hub_http):
    agent = start_agent(tmp_path / "node", broker.port, hub_http, WavSink(tmp_path / "sink"))
    try:
        relay = agent.pin_factory.pin(22)
        assert hub.command("amplifier", on=True).result == {"amplifier_on": True}
        assert relay.state is True
        assert hub.command("speaker-status").result["amplifier_on"] is True  # not switched off when idle
        assert hub.command("amplifier", on=False).result == {"amplifier_on": False}
        assert relay.state is False
    finally:
        agent.stop()


def test_identify_beeps_the_speaker(tmp_path, broker, hub, hub_http):
    sink = WavSink(tmp_path / "sink", realtime=False)
    agent = start_agent(tmp_path / "node", broker.port, hub_http, sink)
    try:
        result = hub.command("identify", seconds=1)
        assert result.ok and result.result["identifying"] == "speaker"
        assert wait_until(lambda: len(sink.entries()) == 1)
        assert "880Hz" in str(sink.entries()[0]["label"])
    finally:
        agent.stop()
