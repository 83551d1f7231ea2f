"""Live announcement latency: from the officer's microphone to the first speaker playing.

A private Mosquitto, the real hub in this process (uvicorn with its WebSocket, the MQTT link)
and real speaker agents (``EdgeAgent`` on mock hardware) whose audio output stamps the wall
time of every piece it is given. The "browser" is a WebSocket client that does what the live
page's script does: after the page's "speak now" it sends 16 kHz PCM in 32 ms pieces (the
page's ScriptProcessor hands over 21 ms; 32 ms is the more delaying choice), paced as a
microphone; silence, then every second a 64 ms
tone burst. The microphone time of a burst is when its first sample was captured: the moment
its piece was sent minus the piece's 32 ms. A speaker's time is when its output was handed
the first audible piece of that burst. Latency = speaker time - microphone time, for every
burst on every speaker; the amplifiers are warm (the page waits ``live.lead_s`` first).

Baseline, same run, same broker: one MQTT hop of a frame of the same size from the hub's
link to a subscriber (publish to receive), the floor any MQTT relay pays. A sound card adds
its own output buffer (typically 20-50 ms with PyAudio's default) on top of the figure.
"""

from __future__ import annotations

import array
import logging
import math
import shutil
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from thanthien.bench.common import Options, Result, Target, percentile, run_measured, wait_for
from thanthien.bench.live_client import LiveSocket
from thanthien.bench.load import node_ids, start_broker
from thanthien.broker import free_port
from thanthien.protocol import Topics

log = logging.getLogger(__name__)

NAME = "live_latency"
TITLE = "Live announcement: the officer's microphone to the first speaker playing"
RATE = 16000
PIECE_S = 0.032
BURST_S = 0.064
AUDIBLE_DBFS = -40.0
T = Topics()


def _tone(seconds: float) -> bytes:
    n = int(seconds * RATE)
    return array.array("h", (int(12000 * math.sin(2 * math.pi * 700 * i / RATE)) for i in range(n))).tobytes()


class _Stamps:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.onsets: dict[str, list[float]] = {}


def _timing_output(node: str, stamps: _Stamps) -> Any:
    from thanthien.edge.audio import NullOutput, PlayResult, level_dbfs

    class Stream:
        def __init__(self) -> None:
            self.started = datetime.now(UTC)
            self.loud = False

        def write(self, frames: bytes) -> None:
            now = time.time()
            loud = level_dbfs(frames) > AUDIBLE_DBFS
            if loud and not self.loud:
                with stamps.lock:
                    stamps.onsets.setdefault(node, []).append(now)
            self.loud = loud

        def close(self, *, interrupted: bool = False) -> PlayResult:
            return PlayResult(self.started, datetime.now(UTC), interrupted)

    class Timing(NullOutput):
        def open_stream(self, sample_rate: int, channels: int, *, label: str = "", volume: int = 100) -> Any:
            return Stream()

    return Timing()



def run(opts: Options) -> Result:
    return run_measured(NAME, TITLE, opts, lambda r: _body(r, opts))


def _body(result: Result, opts: Options) -> None:
    import httpx

    from thanthien.config import MqttSettings, validate_data
    from thanthien.edge.agent import EdgeAgent
    from thanthien.edge.settings import EdgeSettings
    from thanthien.hub.roles import SYSTEM
    from thanthien.hub.runtime import HubRuntime
    from thanthien.hub.services import users
    from thanthien.hub.settings import HubSettings
    from thanthien.hub.web.auth import COOKIE, csrf_for
    from thanthien.mqtt import Message, MqttLink
    from thanthien.protocol.payloads import LiveFrame

    n_nodes = opts.pick(3, 2, 1)
    bursts = opts.pick(20, 8, 3)
    work = opts.work_dir / NAME
    shutil.rmtree(work, ignore_errors=True)
    nodes = node_ids(n_nodes, "loa")
    broker = start_broker(work / "broker", nodes)
    port = free_port()
    settings = validate_data(HubSettings, {
        "hub": {"data_dir": str(work / "hub")}, "database": {"url": f"sqlite:///{work / 'hub.db'}"},
        "http": {"host": "127.0.0.1", "port": port, "secret_key": "bench-live-secret-0123456789"},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "hub",
                 "password": broker.passwords["hub"]},
        "ingest": {"client_id": f"hub-bench-{uuid.uuid4().hex[:6]}"},
        "live": {"lead_s": 0.5},
        "registry": {"zones": [{"code": "ban-a", "name": "Bản A"}],
                     "nodes": [{"id": n, "devices": [{"code": "loa", "kind": "speaker", "zone": "ban-a"}]}
                               for n in nodes]},
    }, "bench")
    hub = HubRuntime(settings)
    stamps = _Stamps()
    agents: list[EdgeAgent] = []
    probe: MqttLink | None = None
    sends: list[float] = []
    hops: list[float] = []
    try:
        hub.start()
        if not (hub.wait_http(30) and hub.link is not None and hub.link.wait_connected(30)):
            raise RuntimeError("the hub did not start")
        with hub.db.session() as s:
            users.create_user(s, actor=SYSTEM, username="officer", password="bench-password-1",
                              role="officer", now=hub.ctx.clock())
        for node in nodes:
            edge = validate_data(EdgeSettings, {
                "node": {"id": node, "hardware": "mock", "data_dir": str(work / "nodes" / node)},
                "mqtt": {"host": "127.0.0.1", "port": broker.port, "password": broker.passwords[node]},
                "audio": {"output": "null"},
                "speakers": {"hub_url": f"http://127.0.0.1:{port}/api/v1/", "relay_pin": 22,
                             "warmup_s": 0.2, "relay_off_delay_s": 2.0},
            }, node)
            agent = EdgeAgent(edge, audio=_timing_output(node, stamps))
            agent.start()
            agents.append(agent)
        if not all(a.link is not None and a.link.wait_connected(30) for a in agents):
            raise RuntimeError("a speaker did not connect")
        threading.Event().wait(1.0)  # their subscriptions settle
        # -- baseline: one MQTT hop of a frame this size -------------------------------------------
        got: list[float] = []
        arrived = threading.Event()

        def on_probe(message: Message) -> None:
            got.append(time.time())
            arrived.set()

        probe = MqttLink(client_id="bench-probe", settings=MqttSettings(
            host="127.0.0.1", port=broker.port, username="hub", password=broker.passwords["hub"]),
            persistent=False)
        probe.route(f"{T.root}/bench/probe", on_probe, qos=0)
        probe.start()
        if not (probe.wait_connected(30) and probe.subscribed.wait(30)):
            raise RuntimeError("the probe did not connect")
        import base64
        frame = LiveFrame(occurrence_id="probe", seq=1, kind="audio", sent_at=datetime.now(UTC),
                          pcm_b64=base64.b64encode(bytes(int(PIECE_S * RATE) * 2)).decode()).to_bytes()
        for _ in range(bursts * 2):
            arrived.clear()
            t0 = time.time()
            hub.link.publish(f"{T.root}/bench/probe", frame, qos=0)
            if arrived.wait(5):
                hops.append(1000 * (got[-1] - t0))
            threading.Event().wait(0.02)
        # -- the announcement ------------------------------------------------------------------------
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False) as c:
            r = c.post("/ui/login", data={"username": "officer", "password": "bench-password-1"})
            if r.status_code != 303:
                raise RuntimeError(f"login refused: {r.status_code}")
            token = str(c.cookies[COOKIE])
        sock = LiveSocket("127.0.0.1", port, cookie=f"{COOKIE}={token}")
        sock.send_json({"csrf": csrf_for(hub.ctx, token), "target_kind": "zones", "target_zones": ["ban-a"],
                        "priority": "priority"})
        opened = sock.recv_json()
        if opened.get("state") != "open":
            raise RuntimeError(f"live refused: {opened}")
        silence = bytes(int(PIECE_S * RATE) * 2)
        burst = _tone(BURST_S)
        piece = len(silence)
        pace = threading.Event()
        t_next = time.monotonic()

        def send(pcm: bytes) -> float:
            nonlocal t_next
            pace.wait(max(0.0, t_next - time.monotonic()))
            sock.send_bytes(pcm)
            t_next += len(pcm) / (2 * RATE)
            return time.time()

        for _ in range(int(max(opened["lead_s"], 0.5) / PIECE_S) + 10):  # the page's wait: amplifiers warm
            send(silence)
        for _ in range(bursts):
            sent = [send(burst[i:i + piece]) for i in range(0, len(burst), piece)]
            sends.append(sent[0] - PIECE_S)  # when the burst's first sample was captured
            for _ in range(int((1.0 - BURST_S) / PIECE_S)):
                send(silence)
        sock.send_json({"end": True})
        sock.recv_json()
        sock.close()
        wait_for(lambda: all(len(stamps.onsets.get(nd, [])) >= bursts for nd in nodes), 5.0, every=0.1)
    finally:
        if probe is not None:
            probe.stop()
        for agent in agents:
            agent.stop()
        hub.stop()
        broker.stop()
    latencies: list[float] = []
    for node in nodes:
        onsets = stamps.onsets.get(node, [])
        if len(onsets) != len(sends):
            result.notes.append(f"{node}: {len(onsets)} bursts heard of {len(sends)} sent.")
        latencies += [1000 * (o - s) for o, s in zip(onsets, sends, strict=False)]
    if not latencies or not hops:
        raise RuntimeError("nothing was measured")
    p50, p95, worst = percentile(latencies, 50), percentile(latencies, 95), max(latencies)
    hop = percentile(hops, 50)
    result.params = {"speakers": n_nodes, "bursts": bursts, "piece_ms": PIECE_S * 1000, "sample_rate": RATE,
                     "path": "WebSocket -> hub -> MQTT QoS 0 (LiveFrame, base64 PCM) -> LiveFeed -> output"}
    result.figures = {"mic_to_speaker_p50_ms": round(p50, 1), "mic_to_speaker_p95_ms": round(p95, 1),
                      "mic_to_speaker_max_ms": round(worst, 1)}
    result.baseline = {"mic_to_speaker_p50_ms": round(hop, 2),
                       "mic_to_speaker_p95_ms": round(percentile(hops, 95), 2),
                       "mic_to_speaker_max_ms": round(max(hops), 2)}
    result.ratio = {k: round(result.figures[k] / result.baseline[k], 1) if result.baseline[k] > 0 else 0.0
                    for k in result.figures}
    result.targets.append(Target("microphone to the first speaker playing, p95", "≤ 1000 ms", round(p95, 1),
                                 "ms", p95 <= 1000, "" if p95 <= 1000 else
                                 "measured on a loaded shared 2-core machine with hub and speakers on it"))
    result.details.append(f"latency {p50:.0f} ms median, {p95:.0f} ms p95, {worst:.0f} ms worst over "
                          f"{len(latencies)} bursts on {n_nodes} speaker(s); "
                          f"one MQTT hop {hop:.1f} ms median")
    result.method = __doc__ or ""

