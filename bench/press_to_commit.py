"""Press to commit: the time from a button press on a mock pin (gpiozero MockFactory) of a
real edge agent to its rating being committed at the hub, p50/p99/max, while presses arrive
at a fixed rate (1,000/s, the target, then 250/s, below the hub's saturation) spread over
many agents (open loop: each agent presses on a schedule; a press that cannot start on time
starts at once and still counts from its scheduled time).

The agents run in a few child processes (so that one process's GIL does not hold the pressing
back), the hub (ingest role) in its own; a commit is stamped by the
hub right after it (CLOCK_MONOTONIC is shared by both). Baseline, in the same run at the same
rate: a bare paho client per node publishing a message (QoS 1) that a bare paho subscriber
inserts into SQLite, from publish to that commit (no agent, no validation, no outbox)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections import deque
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
from thanthien.bench.hubproc import HubProcess, hub_settings
from thanthien.bench.load import BareSubscriber, node_ids, start_broker
from thanthien.config import validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.devices.rating_box import PressOutcome, RatingBoxes
from thanthien.edge.settings import EdgeSettings
from thanthien.protocol import Topics

log = logging.getLogger(__name__)

NAME = "press_to_commit"
TITLE = "Press to commit: button press on a mock pin to the row committed at the hub"
T = Topics()
PIN = 5  # "Rất hài lòng" of the default box


class PressedAgent:
    """One edge agent; press() records the press time, the listener pairs it with the event."""

    def __init__(self, node: str, port: int, password: str, data_dir: str) -> None:
        data = {
            "node": {"id": node, "hardware": "mock", "data_dir": data_dir},
            "mqtt": {"host": "127.0.0.1", "port": port, "password": password, "reconnect_min_s": 0.1,
                     "reconnect_max_s": 1.0},
            "telemetry": {"interval_s": 30},
            "outbox": {"resend_interval_s": 30},
            "audio": {"output": "null"},
            "logging": {"level": "ERROR"},
            "rating_boxes": [{"id": "box-1", "counter": "quay-1", "bounce_ms": 1, "response_interval_s": 0}],
        }
        self.agent = EdgeAgent(validate_data(EdgeSettings, data))
        self.pressed: deque[tuple[float, float]] = deque()  # (scheduled, really pressed)
        self.events: dict[str, float] = {}  # event id -> press time (scheduled)
        self.real: dict[str, float] = {}  # event id -> when the pin was really driven
        self.stored = threading.Semaphore(0)
        self.missed = 0

    def start(self) -> None:
        self.agent.start()
        self.agent.device(RatingBoxes).add_listener(self._on_press)

    def _on_press(self, outcome: PressOutcome) -> None:
        at, real = self.pressed.popleft() if self.pressed else (time.monotonic(), time.monotonic())
        if outcome.event_id is not None:
            self.events[str(outcome.event_id)] = at
            self.real[str(outcome.event_id)] = real
        self.stored.release()

    def press(self, at: float) -> None:
        pin = self.agent.pin_factory.pin(PIN)
        self.pressed.append((at, time.monotonic()))
        pin.drive_low()
        if not self.stored.acquire(timeout=5):
            self.missed += 1
        pin.drive_high()

    def stop(self) -> None:
        self.agent.stop()


def _paced(count: int, interval: float, start: float, act: Any, stop: threading.Event) -> None:
    """Call act(scheduled_time) ``count`` times, one every ``interval`` from ``start``."""
    for i in range(count):
        at = start + i * interval
        delay = at - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        act(at)


def _run_threads(targets: list[Any]) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _latencies(pressed: dict[str, float], committed: dict[str, float]) -> list[float]:
    return [1000 * (committed[k] - v) for k, v in pressed.items() if k in committed]


def _timeline(pressed: dict[str, float], committed: dict[str, float]) -> list[list[float]]:
    """[second since the first press, presses, p50 ms, max ms] per second: shows whether slow
    presses cluster (a stall) or spread (saturation)."""
    if not pressed:
        return []
    t0 = min(pressed.values())
    by_second: dict[int, list[float]] = {}
    for key, at in pressed.items():
        if key in committed:
            by_second.setdefault(int(at - t0), []).append(1000 * (committed[key] - at))
    return [[sec, len(v), round(percentile(v, 50), 1), round(max(v), 1)]
            for sec, v in sorted(by_second.items())]


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 1), "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(max(values), 1)}


def run(opts: Options) -> Result:
    return run_measured(NAME, TITLE, opts, lambda r: _body(r, opts))


def _agents(conn: Connection, port: int, passwords: dict[str, str], work: str,
            placed: list[tuple[str, int]], n_agents: int, per_agent: int, interval: float) -> None:
    """A child process running some of the agents (``placed``: node and its place in the whole
    schedule), so that pressing at the target rate is not held back by one process's GIL."""
    logging.basicConfig(level=logging.ERROR)
    agents = [PressedAgent(n, port, passwords[n], str(Path(work) / n)) for n, _ in placed]
    for a in agents:
        a.start()
    ready = wait_for(lambda: all(a.agent.link is not None and a.agent.link.connected.is_set()
                                 for a in agents), 60)
    conn.send({"ready": ready})
    begin = conn.recv()
    stop = threading.Event()
    _run_threads([lambda a=a, i=i: _paced(per_agent, interval, begin + i * interval / n_agents, a.press, stop)
                  for a, (_n, i) in zip(agents, placed, strict=True)])
    conn.send({"events": {k: v for a in agents for k, v in a.events.items()}, "done": time.monotonic(),
               "missed": sum(a.missed for a in agents),
               "real": {k: v for a in agents for k, v in a.real.items()}})
    conn.recv()  # stop
    for a in agents:
        a.stop()
    conn.send("stopped")


def _press(nodes: list[str], broker: Any, work: Path, processes: int, per_agent: int,
           interval: float) -> tuple[dict[str, float], float, int, dict[str, float]]:
    """Every agent presses on its schedule, spread over ``processes`` child processes; the press
    time of each stored event, the seconds pressing took, presses not stored, and when each press
    really happened (later than scheduled when the load generator falls behind)."""
    ctx = child_processes()
    children = []
    try:
        for k in range(processes):
            parent, child = ctx.Pipe()
            placed = [(n, i) for i, n in enumerate(nodes) if i % processes == k]
            proc = ctx.Process(target=_agents, args=(child, broker.port, broker.passwords, str(work), placed,
                                                     len(nodes), per_agent, interval),
                               daemon=True, name=f"bench-agents-{k}")
            proc.start()
            children.append((proc, parent))
        for _proc, parent in children:
            if not parent.poll(120) or not parent.recv()["ready"]:
                raise RuntimeError("the agents did not connect")
        begin = time.monotonic() + 0.5
        for _proc, parent in children:
            parent.send(begin)
        outcomes = [parent.recv() for _proc, parent in children]
        for proc, parent in children:
            parent.send("stop")
            if parent.poll(60):
                parent.recv()
            proc.join(10)
    finally:
        for proc, _parent in children:
            if proc.is_alive():
                proc.kill()
    pressed = {k: v for o in outcomes for k, v in o["events"].items()}
    return (pressed, max(o["done"] for o in outcomes) - begin, sum(o["missed"] for o in outcomes),
            {k: v for o in outcomes for k, v in o["real"].items()})


def _round(rate: float, seconds: float, nodes: list[str], broker: Any, work: Path,
           stop: threading.Event, processes: int) -> dict[str, Any]:
    """One press rate: the platform, then the bare baseline at the same rate."""
    n_agents = len(nodes)
    per_agent = max(1, int(rate * seconds / n_agents))
    interval = n_agents / rate
    # -- the platform: agents -> broker -> hub -------------------------------------------------
    hub = HubProcess(hub_settings(str(work / "hub"), broker.port, broker.passwords["hub"], nodes=nodes),
                     keep_ids=True).start()
    try:
        pressed, pressing_s, missed, real = _press(nodes, broker, work, processes, per_agent, interval)
        wait_for(lambda: hub.stats()["messages"] >= len(pressed), 120, every=0.2)
    finally:
        commits = hub.stop()
    lat = _latencies(pressed, commits.acked)
    timeline = _timeline(pressed, commits.acked)
    # -- the baseline: bare publishers -> broker -> bare subscriber ------------------------------
    bare = BareSubscriber(broker.port, broker.passwords["hub"], work / "bare.db",
                          topics=[T.wildcard("rating")], keep_ids=True).start()
    sent: dict[str, float] = {}
    try:
        clients = [_bare_client(n, broker.port, broker.passwords[n]) for n in nodes]

        def publish(client: Any, node: str) -> Any:
            def act(at: float) -> None:
                key = str(uuid.uuid4())
                sent[key] = at
                client.publish(T.rating(node), key.encode(), qos=1)
            return act
        begin = time.monotonic() + 0.5
        _run_threads([lambda c=c, n=n, i=i: _paced(per_agent, interval, begin + i * interval / n_agents,
                                                    publish(c, n), stop)
                      for i, (c, n) in enumerate(zip(clients, nodes, strict=True))])
        wait_for(lambda: bare.stats()["messages"] >= len(sent), 60, every=0.2)
        for c in clients:
            c.disconnect()
            c.loop_stop()
    finally:
        bare_commits = bare.stop()
    base = _latencies(sent, bare_commits.acked)
    if not lat or not base:
        raise RuntimeError("no latencies measured")
    return {"lat": lat, "base": base, "achieved": len(pressed) / pressing_s, "pressed": len(pressed),
            "committed": len(lat), "not_stored": missed, "timeline": timeline,
            "press_start_lag_ms": _stats([1000 * (real[k] - v) for k, v in pressed.items() if k in real]),
            "from_real_press_ms": _stats(_latencies(real, commits.acked)),
            "baseline_messages": len(base)}


def _body(result: Result, opts: Options) -> None:
    rates = opts.pick((1000.0, 250.0), (500.0, 100.0), (50.0,))
    seconds = opts.pick(20.0, 8.0, 2.0)
    n_agents = opts.pick(40, 20, 4)
    processes = opts.pick(4, 2, 1)
    work = opts.work_dir / "press_to_commit"
    shutil.rmtree(work, ignore_errors=True)
    nodes = node_ids(n_agents, "press")
    stop = threading.Event()
    result.params = {"rates_per_s": list(rates), "seconds": seconds, "agents": n_agents,
                     "agent_processes": processes, "bounce_ms": 1,
                     "response_interval_s": 0}
    rounds: dict[float, dict[str, Any]] = {}
    try:
        for rate in rates:
            # a broker per rate: the hub's persistent session would otherwise hold the previous
            # round's baseline messages and spend the start of the next round on them
            broker = start_broker(work / f"rate-{int(rate)}" / "broker", nodes)
            try:
                rounds[rate] = _round(rate, seconds, nodes, broker, work / f"rate-{int(rate)}", stop,
                                      processes)
            finally:
                broker.stop()
    finally:
        stop.set()
    for rate, r in rounds.items():
        tag = f"at_{int(rate)}_per_s"
        figures, base = _stats(r["lat"]), _stats(r["base"])
        for k, v in figures.items():
            result.figures[f"{k}_{tag}"] = v
            result.baseline[f"{k}_{tag}"] = base[k]
            if base[k] > 0:
                result.ratio[f"{k}_{tag}"] = round(v / base[k], 2)
        result.figures[f"press_rate_{tag}"] = round(r["achieved"], 1)
        result.params[tag] = {k: v for k, v in r.items() if k not in ("lat", "base")}
    rate = rates[0]
    first = rounds[rate]
    p99 = result.figures[f"p99_ms_at_{int(rate)}_per_s"]
    achieved = first["achieved"]
    met = (p99 <= 100 and achieved >= 0.95 * 1000) if rate >= 1000 else None
    why = ""
    if met is False:
        lag, real = first["press_start_lag_ms"], first["from_real_press_ms"]
        why = (f"p99 {p99:,.0f} ms with {achieved:.0f} presses/s achieved. The presses themselves started "
               f"{lag['p50_ms']:,.0f} ms (median) and {lag['p99_ms']:,.0f} ms (p99) after their scheduled "
               "time, which the figure counts from: the edge agents pressing on this shared 2-core VM do not "
               "keep a 1,000 presses/s schedule, and the latency grows in the load generator for as long as "
               "the load lasts. Counted from the moment each pin was really driven, p50 "
               f"{real['p50_ms']:,.0f} ms and p99 {real['p99_ms']:,.0f} ms. The lower rate shows the latency "
               "below saturation, the bare baseline what the machine alone costs.")
    elif met is None:
        why = "only judged at 1,000 presses/s (the default size)"
    result.targets.append(Target("press to commit p99 at 1,000 presses/s", "≤ 100 ms", p99, "ms", met, why))
    result.method = __doc__ or ""


def _bare_client(node: str, port: int, password: str) -> Any:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    connected = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{node}", protocol=paho.MQTTv5)
    client.username_pw_set(node, password)
    client.max_queued_messages_set(0)
    client.on_connect = lambda *_a: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(30):
        raise RuntimeError(f"{node} could not connect")
    return client
