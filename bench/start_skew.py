"""Broadcast start skew: many simulated speaker nodes, each running the edge's real plan
player (``thanthien.edge.speaker.player.PlanPlayer``) with its own media cache and an audio
output that stamps the moment playback starts, spread over two worker processes.

* Scheduled: every node is given a plan with one broadcast starting ``lead`` seconds ahead
  (a minute by default); the start error of a node is its stamp minus the scheduled time.
  Run with 100 nodes (the target) and then with 500. Baseline, same processes, same run:
  one bare thread per node that waits with ``threading.Event.wait`` until the time and
  stamps (the floor this machine's scheduler gives).
* Play-now: every node holds an MQTT connection (its own account) subscribed to its
  ``cmd/play-now`` topic; the hub account publishes one play-now command per node, and the
  figure is the time from the first publish to the last node starting. Baseline in the same
  run: the time from the first publish to the last node receiving its command (delivery
  alone). The amplifier is taken as already on (warm-up 0): a cold amplifier adds the
  configured ``speakers.warmup_s`` by design (the relay powers it before the audio).

The plans are handed to the players directly (plan delivery over MQTT happens a minute
ahead and does not set the start time); the play-now path goes through the broker."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from thanthien.bench.common import (
    Options,
    Result,
    Target,
    child_processes,
    percentile,
    run_measured,
    wait_for,
)
from thanthien.bench.load import node_ids, start_broker
from thanthien.protocol import Topics

log = logging.getLogger(__name__)

NAME = "start_skew"
TITLE = "Broadcast start skew: speaker nodes' start times vs the scheduled time; play-now to the last node"
T = Topics()
WORKERS = 2


def _clip_wav() -> bytes:
    from thanthien.edge.audio import AudioClip

    return AudioClip(b"\x00\x00" * 8000, 8000, 1, "bench").to_wav()  # one second of silence


def _item(occ: str, sha: str, start: datetime, priority: str = "normal") -> Any:
    from thanthien.protocol.payloads import PlanItem

    return PlanItem(occurrence_id=occ, broadcast_id=1, title="Bản tin thử", start_at=start, media_sha256=sha,
                    media_url=f"media/{sha}", duration_s=1.0, priority=priority, volume=80)  # type: ignore[arg-type]


def _worker(conn: Connection, nodes: list[str], passwords: dict[str, str], port: int, base: str) -> None:
    logging.basicConfig(level=logging.ERROR)
    from thanthien.config import MqttSettings
    from thanthien.edge.audio import NullOutput, PlayResult
    from thanthien.edge.speaker.media_cache import MediaCache
    from thanthien.edge.speaker.player import PlanPlayer, PlayerSettings
    from thanthien.mqtt import Message, MqttLink
    from thanthien.protocol.payloads import Command, Plan

    started: dict[str, float] = {}
    received: dict[str, float] = {}
    lock = threading.Lock()

    class StampOutput(NullOutput):
        def __init__(self, node: str) -> None:
            self.node = node

        def play(self, clip: Any, *, volume: int = 100, stop: threading.Event | None = None) -> PlayResult:
            now = time.time()
            with lock:
                started.setdefault(self.node, now)
            return super().play(clip, volume=volume, stop=stop)

    settings = PlayerSettings(warmup_s=0.0, prepare_s=0.5)
    players: dict[str, PlanPlayer] = {}
    sha = ""
    for node in nodes:
        cache = MediaCache(Path(base) / "media")
        sha = cache.put(_clip_wav())
        players[node] = PlanPlayer(node, StampOutput(node), cache, on_event=lambda _e: None,
                                   settings=settings)
    links: list[MqttLink] = []
    conn.send({"ready": True, "sha": sha})
    while True:
        command, arg = conn.recv()
        if command == "plan":  # arg: (count of nodes to use, epoch start)
            count, start = arg
            started.clear()
            when = datetime.fromtimestamp(start, UTC)
            for i, node in enumerate(nodes[:count]):
                player = players[node]
                player.start()
                player.set_plan(Plan(node=node, revision=int(start), generated_at=datetime.now(UTC),
                                     valid_until=when + timedelta(days=1),
                                     items=[_item(f"occ-{int(start)}-{i}", sha, when)]))
            conn.send(True)
        elif command == "bare":  # arg: (count, epoch start): plain Event.wait threads
            count, start = arg
            stamps: dict[str, float] = {}

            def bare(node: str, at: float = start, out: dict[str, float] = stamps) -> None:
                threading.Event().wait(max(0.0, at - time.time()))
                out[node] = time.time()
            threads = [threading.Thread(target=bare, args=(n,), daemon=True) for n in nodes[:count]]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            conn.send(stamps)
        elif command == "connect":
            for node in nodes:
                def on_cmd(message: Message, node: str = node) -> None:
                    now = time.time()
                    with lock:
                        received.setdefault(node, now)
                    cmd = Command.model_validate_json(message.payload)
                    args = cmd.args
                    item = _item(str(args["occurrence_id"]), str(args["media_sha256"]),
                                 datetime.now(UTC), str(args.get("priority", "emergency")))
                    players[node].play_now(item)
                link = MqttLink(client_id=node, settings=MqttSettings(
                    host="127.0.0.1", port=port, username=node, password=passwords[node],
                    reconnect_min_s=0.2, reconnect_max_s=2.0), persistent=False)
                link.route(T.command(node, "play-now"), on_cmd)
                link.start()
                links.append(link)
            ok = all(lk.wait_connected(60) and lk.subscribed.wait(60) for lk in links)
            conn.send(ok)
        elif command == "count":
            with lock:
                conn.send(len(started))
        elif command == "collect":
            with lock:
                conn.send({"started": dict(started), "received": dict(received)})
            started.clear()
            received.clear()
        elif command == "stop":
            for link in links:
                link.stop()
            for player in players.values():
                player.close()
            conn.send(True)
            return


class Workers:
    def __init__(self, nodes: list[str], passwords: dict[str, str], port: int, base: Path) -> None:
        ctx = child_processes()
        self.parts = [nodes[i::WORKERS] for i in range(WORKERS)]
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for i, part in enumerate(self.parts):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, part, passwords, port, str(base / f"w{i}")),
                               daemon=True, name=f"bench-speakers-{i}")
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        self.sha = ""
        for c in self.conns:
            if not c.poll(120):
                raise RuntimeError("a speaker worker did not start")
            self.sha = c.recv()["sha"]

    def ask(self, command: str, arg: Any = None, timeout: float = 300) -> list[Any]:
        for c in self.conns:
            c.send((command, arg))
        out = []
        for c in self.conns:
            if not c.poll(timeout):
                raise RuntimeError(f"a speaker worker did not answer {command}")
            out.append(c.recv())
        return out

    def ask_split(self, command: str, count: int, start: float) -> list[Any]:
        """``count`` nodes spread over the workers."""
        per = [len(p[: (count + WORKERS - 1 - i) // WORKERS]) for i, p in enumerate(self.parts)]
        for c, n in zip(self.conns, per, strict=True):
            c.send((command, (n, start)))
        return [c.recv() for c in self.conns]

    def stop(self) -> None:
        try:
            self.ask("stop", timeout=60)
        finally:
            for p in self.procs:
                p.join(10)
                if p.is_alive():
                    p.kill()


def _errors(stamps: dict[str, float], at: float) -> list[float]:
    return [1000 * (s - at) for s in stamps.values()]


def _stats(errors: list[float]) -> dict[str, float]:
    absolute = [abs(e) for e in errors]
    return {"p50_ms": round(percentile(absolute, 50), 2), "p99_ms": round(percentile(absolute, 99), 2),
            "max_ms": round(max(absolute), 2)}


def run(opts: Options) -> Result:
    return run_measured(NAME, TITLE, opts, lambda r: _body(r, opts))


def _body(result: Result, opts: Options) -> None:
    sizes = opts.pick((100, 500), (100, 500), (10, 20))
    lead = opts.pick(60.0, 15.0, 2.0)
    bare_lead = opts.pick(5.0, 3.0, 1.0)
    work = opts.work_dir / "start_skew"
    shutil.rmtree(work, ignore_errors=True)
    nodes = node_ids(max(sizes), "spk")
    broker = start_broker(work / "broker", nodes)
    workers = Workers(nodes, broker.passwords, broker.port, work)
    result.params = {"nodes": list(sizes), "lead_s": lead, "workers": WORKERS, "warmup_s": 0.0,
                     "player": "PlanPlayer defaults (prepare 0.5 s, approach 50 ms in 2 ms steps)"}
    try:
        for n in sizes:
            at = time.time() + bare_lead
            stamps = {k: v for part in workers.ask_split("bare", n, at) for k, v in part.items()}
            base = _stats(_errors(stamps, at))
            at = time.time() + lead
            workers.ask_split("plan", n, at)
            threading.Event().wait(max(0.0, at - time.time()))
            wait_for(lambda n=n: sum(workers.ask("count")) >= n, 3.0, every=0.1)
            got = {k: v for part in workers.ask("collect") for k, v in part["started"].items()}
            if len(got) < n:
                result.notes.append(f"{n} nodes: only {len(got)} started their scheduled broadcast.")
            errors = _errors(got, at)
            for key, value in _stats(errors).items():
                result.figures[f"scheduled_{n}_{key}"] = value
                result.baseline[f"scheduled_{n}_{key}"] = base[key]
                if base[key] > 0:
                    result.ratio[f"scheduled_{n}_{key}"] = round(value / base[key], 2)
            result.params[f"scheduled_{n}_mean_signed_ms"] = round(sum(errors) / len(errors), 2)
        # -- play-now over MQTT -------------------------------------------------------------------
        if not all(workers.ask("connect")):
            raise RuntimeError("speaker nodes could not connect to the broker")
        n = max(sizes)
        from thanthien.config import MqttSettings
        from thanthien.mqtt import MqttLink
        from thanthien.protocol.payloads import Command

        hub = MqttLink(client_id="bench-hub", settings=MqttSettings(
            host="127.0.0.1", port=broker.port, username="hub", password=broker.passwords["hub"]),
            persistent=False)
        hub.start()
        if not hub.wait_connected(30):
            raise RuntimeError("the hub client could not connect")
        cmd = Command(args={"occurrence_id": "play-now-1", "broadcast_id": 1, "media_sha256": workers.sha,
                            "priority": "emergency"}, issued_at=datetime.now(UTC)).to_bytes()
        t0 = time.time()
        for node in nodes[:n]:
            hub.publish(T.command(node, "play-now"), cmd, qos=1)
        wait_for(lambda: sum(workers.ask("count")) >= n, 5.0, every=0.1)
        collected = workers.ask("collect")
        hub.stop()
        started = {k: v for part in collected for k, v in part["started"].items()}
        received = {k: v for part in collected for k, v in part["received"].items()}
    finally:
        workers.stop()
        broker.stop()
    if len(started) < n:
        result.notes.append(f"play-now: only {len(started)} of {n} nodes started within 5 s.")
    last_start = 1000 * (max(started.values()) - t0) if started else float("nan")
    last_recv = 1000 * (max(received.values()) - t0) if received else float("nan")
    result.figures[f"play_now_{n}_last_start_ms"] = round(last_start, 1)
    result.baseline[f"play_now_{n}_last_start_ms"] = round(last_recv, 1)
    result.ratio[f"play_now_{n}_last_start_ms"] = round(last_start / last_recv, 2) if last_recv > 0 else 0.0
    small = sizes[0]
    p99 = result.figures[f"scheduled_{small}_p99_ms"]
    judged = small == 100
    result.targets.append(Target(f"start error per node, {small} speaker nodes, p99", "≤ 20 ms", p99, "ms",
                                 p99 <= 20 if judged else None,
                                 "" if not judged or p99 <= 20 else WHY_SKEW))
    result.targets.append(Target(f"play-now to the last of {n} nodes starting", "≤ 500 ms",
                                 round(last_start, 1), "ms", last_start <= 500 if n == 500 else None,
                                 "" if n != 500 or last_start <= 500 else WHY_PLAY_NOW))
    result.method = __doc__ or ""


WHY_SKEW = ("All simulated nodes share two cores (and the other engineers' work), so at the start time "
            "hundreds of player threads wake together and wait for the CPU; on real nodes each Pi runs "
            "one player. The bare Event.wait baseline in the same processes shows the machine's floor.")
WHY_PLAY_NOW = ("One publish per node from one client and one MQTT connection per node, all on the "
                "same loaded 2-core machine; the delivery baseline shows how much is the broker and "
                "the clients alone.")
