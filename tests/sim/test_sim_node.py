"""Simulated nodes in this process on the harness broker: bouncing presses counted once in the
ledger, a speaker that plays on its own (offset) clock into a WAV sink, telemetry that reports
the offset, and the control language."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import uuid
from datetime import datetime, timedelta
from functools import partial

import pytest

from support import HUB, connected_link, wait_until
from thanthien.edge.audio import AudioClip
from thanthien.edge.sounds import chime
from thanthien.mqtt import request_properties
from thanthien.protocol import Topics
from thanthien.protocol.payloads import Command, utc_now
from thanthien.sim.control import ControlError, answer, parse
from thanthien.sim.group import CitizenHabits, NodeGroup
from thanthien.sim.ledger import Ledger, read_ledger
from thanthien.sim.node import BoxSpec, NodeSpec, SimEnv

T = Topics()
OFFSET_S = 1.0


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A WAV served over HTTP as the hub would (``media/<sha256>``)."""
    root = tmp_path_factory.mktemp("media")
    wav = AudioClip(chime(0.4).frames, 22050, 1).to_wav()
    sha = hashlib.sha256(wav).hexdigest()
    (root / "media").mkdir()
    (root / "media" / sha).write_bytes(wav)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", sha
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def group(broker, media, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("simnodes")
    tag = uuid.uuid4().hex[:4]
    specs = [NodeSpec(f"box-{tag}", "box-pass-1", boxes=(BoxSpec("box-1", "quay-1"),)),
             NodeSpec(f"loa-{tag}", "loa-pass-1", speaker=True, clock_offset_s=OFFSET_S)]
    broker.add_users({s.node_id: s.password for s in specs})
    ledger = Ledger(tmp / "ledger.jsonl")
    env = SimEnv("127.0.0.1", broker.port, tmp, ledger=ledger, hub_url=media[0], keepalive_s=5)
    g = NodeGroup(specs, env, habits=CitizenHabits(press_rate=0))
    g.start()
    try:
        assert wait_until(lambda: g.connected() == 2, timeout=20)
        yield g, ledger, specs
    finally:
        g.stop()
        ledger.close()


def test_a_bouncing_press_is_one_rating_in_the_ledger(group):
    g, ledger, specs = group
    node = g.nodes[specs[0].node_id]
    assert node.press(0, 2, bouncy=True)
    assert wait_until(lambda: len(read_ledger(ledger.path)) == 1, timeout=5)
    (entry,) = read_ledger(ledger.path).values()
    assert (entry["node"], entry["score"], entry["counter"]) == (node.node_id, 2, "quay-1")


def test_the_speaker_plays_on_its_own_clock_into_the_wav_sink(group, broker, media):
    g, _ledger, specs = group
    node = g.nodes[specs[1].node_id]
    start = utc_now() + timedelta(seconds=3)
    command = Command(args={"occurrence_id": "occ-1", "broadcast_id": 7, "media_sha256": media[1],
                            "start_at": start.isoformat()}, issued_at=utc_now())
    hub = connected_link(broker.port, HUB, f"hub-cmd-{node.node_id}")
    try:
        hub.publish_confirmed(T.command(node.node_id, "play-now"), command.to_bytes(),
                              properties=request_properties(T.command_result(node.node_id), b"1"))
        playlog = node.data_dir / "audio" / "playlog.jsonl"
        assert wait_until(playlog.exists, timeout=15)
    finally:
        hub.stop()
    played = json.loads(playlog.read_text().splitlines()[0])
    early = (start - datetime.fromisoformat(played["started_at"])).total_seconds()
    assert early == pytest.approx(OFFSET_S, abs=0.35)  # its clock is ahead: it starts early


def test_the_mute_fault_leaves_the_speakers_microphone_hearing_only_the_background(group, broker, media):
    g, _ledger, specs = group
    node = g.nodes[specs[1].node_id]
    assert g.apply("mute", [node.node_id])["muted"] is True
    playlog = node.data_dir / "audio" / "playlog.jsonl"
    before = len(playlog.read_text().splitlines()) if playlog.exists() else 0
    command = Command(args={"occurrence_id": "occ-muted", "broadcast_id": 7, "media_sha256": media[1]},
                      issued_at=utc_now())
    hub = connected_link(broker.port, HUB, f"hub-mute-{node.node_id}")
    try:
        hub.publish_confirmed(T.command(node.node_id, "play-now"), command.to_bytes(),
                              properties=request_properties(T.command_result(node.node_id), b"2"))
        assert wait_until(lambda: playlog.exists() and len(playlog.read_text().splitlines()) > before, 15)
    finally:
        hub.stop()
        g.apply("unmute", [node.node_id])
    played = json.loads(playlog.read_text().splitlines()[before])
    assert all(v > -40 for v in played["sent_dbfs"])
    assert all(v < -60 for v in played["heard_dbfs"])


def test_telemetry_reports_the_node_clock_offset(group):
    g, _ledger, specs = group
    agent = g.nodes[specs[1].node_id].agent
    telemetry = agent.publish_telemetry()
    assert telemetry is not None
    assert telemetry.clock_synced is True
    assert telemetry.clock_offset_ms == pytest.approx(-OFFSET_S * 1000)  # chrony's correction


def test_control_lines_are_checked_before_anything_runs():
    ran = []
    assert parse("  ") is None and parse("# comment") is None
    assert parse("cut loa-1 reset").args == ["loa-1", "reset"]
    for bad, reason in (("cut loa-1 sideways", "mode must be"), ("camera n c purple", "mode must be"),
                        ("press n 0 9", "SCORE"), ("explode n", "unknown command"), ("kill", "arguments")):
        with pytest.raises(ControlError, match=reason):
            parse(bad)
        reply = json.loads(answer(bad, lambda c: ran.append(c) or {}, lambda: ran.append("stop")))
        assert reply["ok"] is False
    assert ran == []
    assert json.loads(answer("kill n1", lambda c: {"killed": c.args[0]}, lambda: None)) == \
        {"ok": True, "result": {"killed": "n1"}}


def test_live_citizens_keep_office_hours_when_asked(tmp_path):
    from datetime import datetime as dt

    from thanthien.sim.citizens import LOCAL_TZ

    env = SimEnv("127.0.0.1", 1, tmp_path)
    specs = [NodeSpec("n-1", "x", boxes=(BoxSpec("box-1", "quay-1"),))]
    office = NodeGroup(specs, env, habits=CitizenHabits(office_hours=True))
    always = NodeGroup(specs, env, habits=CitizenHabits())
    sunday, tet, monday_peak = (dt(2026, 3, 1, 9, 0, tzinfo=LOCAL_TZ), dt(2026, 2, 17, 9, 0, tzinfo=LOCAL_TZ),
                                dt(2026, 3, 2, 9, 0, tzinfo=LOCAL_TZ))
    assert not any(office.comes(t) for t in (sunday, tet, dt(2026, 3, 2, 22, 0, tzinfo=LOCAL_TZ))
                   for _ in range(50))
    assert sum(office.comes(monday_peak) for _ in range(200)) > 150
    assert all(always.comes(sunday) for _ in range(50))
