"""The fleet: N simulated nodes running the real edge agent on mock hardware, spread over a
few worker processes (each a :class:`~thanthien.sim.group.NodeGroup`), for load tests.

The parent keeps a pipe to each worker: it starts them, routes control commands to the
worker that holds a node, sums their status, and stops them. A worker whose parent died
(its pipe closed) stops its nodes by itself; workers ignore SIGINT so that Ctrl-C in a
terminal reaches only the parent, which stops everyone in order.

``--mix`` kinds: ``rating`` (one rating box), ``speaker`` (a loudspeaker cluster: WAV sink,
amplifier relay), ``office`` (two rating boxes and one simulated camera).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing as mp
import random
import secrets
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from thanthien.sim.citizens import ScoreMix
from thanthien.sim.group import CitizenHabits, NodeGroup
from thanthien.sim.ledger import Ledger
from thanthien.sim.node import BoxSpec, FaultError, NodeSpec, SimEnv

log = logging.getLogger(__name__)

KINDS = ("rating", "speaker", "office")
DEFAULT_MIX = "rating=0.6,speaker=0.35,office=0.05"
MIXES = (ScoreMix(), ScoreMix(0.40, 0.35, 0.15, 0.10), ScoreMix(0.70, 0.22, 0.06, 0.02))


def parse_mix(text: str) -> dict[str, float]:
    """``rating=0.6,speaker=0.4`` -> shares that sum to 1 (weights are normalised)."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name not in KINDS:
            raise ValueError(f"--mix: {part.strip()!r} is not KIND=WEIGHT, KIND one of {', '.join(KINDS)}")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"--mix: weight of {name} is not a number: {value!r}") from None
        if weight < 0 or not math.isfinite(weight):
            raise ValueError(f"--mix: weight of {name} must be a finite number >= 0")
        weights[name] = weight
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("--mix: at least one weight must be above 0")
    return {k: v / total for k, v in weights.items()}


def make_specs(nodes: int, mix: dict[str, float], *, seed: int = 1, prefix: str = "sim",
               clock_skew_s: float = 0.0) -> list[NodeSpec]:
    """``nodes`` node specs with kinds in proportion to ``mix`` (largest remainder), random
    passwords, and clock offsets uniform in ±``clock_skew_s``."""
    rng = random.Random(seed)
    exact = {k: nodes * share for k, share in mix.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[: nodes - sum(counts.values())]:
        counts[k] += 1
    kinds = [k for k in KINDS for _ in range(counts.get(k, 0))]
    rng.shuffle(kinds)
    width = max(4, len(str(nodes)))
    specs = []
    for i, kind in enumerate(kinds, start=1):
        node_id = f"{prefix}-{i:0{width}d}"
        counter = f"{prefix}-quay-{i:0{width}d}"
        boxes: tuple[BoxSpec, ...] = ()
        if kind == "rating":
            boxes = (BoxSpec("box-1", counter, rng.choice(MIXES)),)
        elif kind == "office":
            boxes = (BoxSpec("box-1", counter + "a", rng.choice(MIXES)),
                     BoxSpec("box-2", counter + "b", rng.choice(MIXES)))
        offset = rng.uniform(-clock_skew_s, clock_skew_s) if clock_skew_s else 0.0
        specs.append(NodeSpec(node_id, secrets.token_urlsafe(12), boxes=boxes,
                              cameras=("cam-1",) if kind == "office" else (), speaker=kind == "speaker",
                              clock_offset_s=offset))
    return specs


@dataclass
class FleetOptions:
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    data_root: Path = Path("var/fleet")
    ledger: Path | None = None
    workers: int = 2
    habits: CitizenHabits = field(default_factory=CitizenHabits)
    faultable: int = 20
    """The first this many nodes run behind a NetCut (cut, kill)."""
    seed: int = 1
    start_rate: float = 0.0
    env: dict[str, Any] = field(default_factory=dict)
    """Extra :class:`SimEnv` fields (telemetry_s, keepalive_s, hub_url, resend_s ...)."""
    log_level: str = "WARNING"


def _worker_main(conn: Connection, specs: list[NodeSpec], options: FleetOptions, index: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    logging.basicConfig(level=options.log_level,
                        format=f"%(asctime)s worker{index} %(levelname)s %(name)s: %(message)s")
    threading.stack_size(512 * 1024)  # hundreds of threads per worker; the default 8 MiB is wasted
    ledger = Ledger(options.ledger) if options.ledger else None
    env = SimEnv(options.broker_host, options.broker_port, options.data_root, ledger=ledger, **options.env)
    faultable = {s.node_id for s in specs[: max(options.faultable, 0)]} if options.faultable else set()
    group = NodeGroup(specs, env, habits=options.habits, faultable=faultable,
                      seed=options.seed * 1000 + index, start_rate=options.start_rate)
    failed = threading.Event()

    def start() -> None:
        try:
            group.start()
        except Exception:
            log.exception("worker %d: nodes could not start", index)
            failed.set()

    try:
        threading.Thread(target=start, name="group-start", daemon=True).start()
        while not failed.is_set():
            if not conn.poll(1.0):
                continue
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break  # the parent is gone
            if message[0] == "stop":
                break
            try:
                result: Any = group.apply(message[1], message[2])
                conn.send(("ok", result))
            except Exception as exc:
                conn.send(("error", str(exc)))
    finally:
        group.stop()
        if ledger is not None:
            ledger.close()
        with contextlib.suppress(OSError, BrokenPipeError):
            conn.send(("stopped", None))


class Fleet:
    def __init__(self, specs: Sequence[NodeSpec], options: FleetOptions) -> None:
        self.specs = list(specs)
        self.options = options
        needed = default_workers(len(self.specs))
        if options.workers < needed:
            log.info("fleet: %d workers instead of %d (at most %d nodes per worker)", needed, options.workers,
                     NODES_PER_WORKER)
        workers = max(1, min(max(options.workers, needed), len(self.specs)))
        # The faultable nodes are the first ones overall: give every worker its share.
        faultable_ids = {s.node_id for s in self.specs[: options.faultable]}
        self.shares: list[list[NodeSpec]] = [self.specs[i::workers] for i in range(workers)]
        self._faultable_per_worker = [sum(1 for s in share if s.node_id in faultable_ids)
                                      for share in self.shares]
        self.where = {s.node_id: i for i, share in enumerate(self.shares) for s in share}
        self._procs: list[mp.process.BaseProcess] = []
        self._conns: list[Connection] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        for i, share in enumerate(self.shares):
            parent, child = ctx.Pipe()
            # Order each share so its faultable nodes come first (the worker takes the first k).
            opts = replace(self.options, faultable=self._faultable_per_worker[i])
            proc = ctx.Process(target=_worker_main, args=(child, share, opts, i), name=f"fleet-worker-{i}",
                               daemon=False)
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        log.info("fleet: %d nodes in %d worker process(es): %s", len(self.specs), len(self._procs),
                 ", ".join(str(p.pid) for p in self._procs))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def alive(self) -> bool:
        return all(p.is_alive() for p in self._procs)

    def _ask(self, worker: int, command: str, args: list[str], timeout: float = 30.0) -> Any:
        conn = self._conns[worker]
        with self._lock:
            conn.send(("cmd", command, args))
            if not conn.poll(timeout):
                raise FaultError(f"worker {worker} did not answer {command!r} within {timeout} s")
            kind, value = conn.recv()
        if kind == "error":
            raise FaultError(value)
        return value

    def apply(self, command: str, args: list[str]) -> dict[str, Any]:
        """A control command: ``status`` sums all workers, the others go to the node's worker."""
        if command in ("pause", "resume"):
            results = [self._ask(i, command, []) for i in range(len(self._conns))]
            return {"paused": command == "pause", "idle": all(r["idle"] for r in results)}
        if command == "status":
            results = [self._ask(i, "status", [a for a in args if self.where.get(a) == i] if args else [])
                       for i in range(len(self._conns))]
            out: dict[str, Any] = {key: sum(r[key] for r in results)
                                   for key in ("nodes", "connected", "presses", "outbox")}
            out["paused"] = any(r["paused"] for r in results)
            if args:
                out["detail"] = [d for r in results for d in r.get("detail", [])]
            return out
        if not args or args[0] not in self.where:
            raise FaultError(f"no node {args[0] if args else ''!r} in this fleet")
        return self._ask(self.where[args[0]], command, args)

    def wait_connected(self, count: int | None = None, timeout: float = 60.0) -> bool:
        """Until ``count`` nodes (default all) are connected to the broker."""
        want = len(self.specs) if count is None else count
        tick = threading.Event()
        waited = 0.0
        while waited < timeout:
            if self.apply("status", [])["connected"] >= want:
                return True
            tick.wait(0.25)
            waited += 0.25
        return False

    def stop(self, timeout: float = 60.0) -> None:
        """Every worker stops its nodes cleanly; one that hangs is killed. Safe twice."""
        for conn in self._conns:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(("stop",))
        for proc in self._procs:
            proc.join(timeout)
            if proc.is_alive():
                log.error("fleet worker %s did not stop; killing it", proc.pid)
                proc.kill()
                proc.join(5)
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def registry_declarations(specs: Sequence[NodeSpec]) -> dict[str, list[dict[str, Any]]]:
    """A hub ``[registry]`` for the fleet, so the hub knows its nodes (else it lists them as
    unregistered, one alarm each)."""
    counters = [{"code": b.counter, "name": f"Quầy mô phỏng {b.counter}"} for s in specs for b in s.boxes]
    nodes = []
    for s in specs:
        devices: list[dict[str, Any]] = [{"code": b.id, "kind": "rating_box", "counter": b.counter}
                                         for b in s.boxes]
        devices += [{"code": c, "kind": "camera"} for c in s.cameras]
        if s.speaker:
            devices.append({"code": "loa", "kind": "speaker"})
        nodes.append({"id": s.node_id, "name": f"Nút mô phỏng {s.node_id}", "devices": devices})
    return {"counters": counters, "nodes": nodes}


def broker_users(specs: Sequence[NodeSpec]) -> dict[str, str]:
    return {s.node_id: s.password for s in specs}


NODES_PER_WORKER = 100
"""paho-mqtt waits on its socket with select(), which fails for file descriptors >= 1024
(the node then closes every new connection before its CONNECT); a node holds about seven
(outbox database and WAL, lock file, socket, paho's wake-up pair ...), so a worker keeps
to 100 nodes."""


def default_workers(nodes: int) -> int:
    return max(1, math.ceil(nodes / NODES_PER_WORKER))
