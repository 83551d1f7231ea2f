"""A group of simulated nodes in one process, with the citizens who press their buttons and
the faults applied to them. The fleet runs one group per worker process; the demo town runs
one group in its own process.

Citizens arrive at each box as a Poisson process of ``press_rate`` visits per minute, score
drawn from the box's mix, with the citizen model's repeat presses (ignored by the box's
response interval) and bouncing contacts. By default they come round the clock (the live
simulation is there to be watched); with ``office_hours`` the rate follows the citizen
model's office hours, peaks and holidays (nobody at night, at weekends or at Tết).
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from thanthien.sim.citizens import LOCAL_TZ, CitizenModel
from thanthien.sim.node import FaultError, NodeSpec, SimEnv, SimNode, prepare_sounds

log = logging.getLogger(__name__)

PRESS_THREADS = 4
PEAK = 1.5
"""The citizen model's highest rate factor (at the morning and afternoon peaks)."""


@dataclass(frozen=True)
class CitizenHabits:
    press_rate: float = 1.0
    """Visits per box per minute (0: nobody comes)."""
    repeat_probability: float = 0.08
    bounce_probability: float = 0.3
    office_hours: bool = False
    """Follow :meth:`CitizenModel.rate_factor` (thinning the arrivals) instead of round the clock."""


class NodeGroup:
    def __init__(self, specs: Iterable[NodeSpec], env: SimEnv, *, habits: CitizenHabits | None = None,
                 faultable: set[str] | None = None, seed: int = 1, start_rate: float = 0.0) -> None:
        self.env = env
        self.habits = habits or CitizenHabits()
        self.seed = seed
        self.start_rate = start_rate
        """Nodes started per second (0: all at once), to spread the connect storm."""
        faultable = faultable or set()
        self.nodes: dict[str, SimNode] = {
            s.node_id: SimNode(s, env, faultable=s.node_id in faultable, seed=seed) for s in specs}
        self.stop_event = threading.Event()
        self.rng = random.Random(seed)
        self._model = CitizenModel(counters={})
        self._pool = ThreadPoolExecutor(PRESS_THREADS, thread_name_prefix="citizen")
        self._thread: threading.Thread | None = None
        self.presses = 0
        self.paused = threading.Event()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0

    # -- life -----------------------------------------------------------------------------
    def start(self) -> None:
        prepare_sounds(self.env)
        pause = threading.Event()
        for node in self.nodes.values():
            if self.stop_event.is_set():
                return
            node.start()
            if self.start_rate > 0:
                pause.wait(1 / self.start_rate)
        if self.habits.press_rate > 0:
            self._thread = threading.Thread(target=self._arrivals, name="citizens", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for node in self.nodes.values():
            node.stop_event.set()
        # Each clean stop waits for its goodbye's PUBACK and joins threads: do a few at once.
        with ThreadPoolExecutor(8, thread_name_prefix="stopper") as stopper:
            for node in self.nodes.values():
                stopper.submit(self._stop_node, node)

    @staticmethod
    def _stop_node(node: SimNode) -> None:
        try:
            node.stop()
        except Exception:
            log.exception("stopping %s failed", node.node_id)

    def connected(self) -> int:
        return sum(1 for n in self.nodes.values() if n.connected)

    def outbox_depth(self) -> int:
        """Events waiting for the hub's ack, over the running nodes."""
        return sum(n.status()["outbox"] or 0 for n in self.nodes.values())

    # -- citizens -------------------------------------------------------------------------
    def _next_gap(self) -> float:
        # With office hours, arrivals are drawn at the peak rate and thinned (as the model does).
        peak = PEAK if self.habits.office_hours else 1.0
        return self.rng.expovariate(peak * self.habits.press_rate / 60)

    def comes(self, local: datetime) -> bool:
        """Whether a citizen drawn at ``local`` time really comes (always, round the clock;
        with office hours, thinned by the citizen model's rate factor)."""
        if not self.habits.office_hours:
            return True
        return self.rng.random() * PEAK < self._model.rate_factor(local)

    def _arrivals(self) -> None:
        now = time.monotonic()
        queue: list[tuple[float, str, int, int | None]] = []
        for node in self.nodes.values():
            for i in range(len(node.spec.boxes)):
                queue.append((now + self._next_gap(), node.node_id, i, None))
        heapq.heapify(queue)
        while queue and not self.stop_event.is_set():
            due, node_id, box, repeat_score = queue[0]
            if self.stop_event.wait(max(due - time.monotonic(), 0)):
                break
            heapq.heappop(queue)
            node = self.nodes[node_id]
            if repeat_score is not None:
                self._submit(node, box, repeat_score, self.rng.random() < self.habits.bounce_probability)
                continue
            heapq.heappush(queue, (due + self._next_gap(), node_id, box, None))
            if not self.comes(datetime.now(LOCAL_TZ)):
                continue  # closed, or a quiet moment
            spec = node.spec.boxes[box]
            score = spec.mix.draw(self.rng)
            bouncy = self.rng.random() < self.habits.bounce_probability
            self._submit(node, box, score, bouncy)
            if self.rng.random() < self.habits.repeat_probability:
                heapq.heappush(queue, (due + self.rng.uniform(0.5, 3.0), node_id, box, score))

    def _submit(self, node: SimNode, box: int, score: int, bouncy: bool) -> None:
        with self._lock:
            if self.paused.is_set():
                return
            self._in_flight += 1
        self._pool.submit(self._press, node, box, score, bouncy)

    def _press(self, node: SimNode, box: int, score: int, bouncy: bool) -> None:
        pressed = False
        try:
            pressed = node.press(box, score, bouncy=bouncy)
        except Exception:
            log.exception("press on %s failed", node.node_id)
        with self._lock:
            self.presses += int(pressed)
            self._in_flight -= 1
            self._idle.notify_all()

    def pause(self, timeout: float = 30.0) -> bool:
        """No new citizens; returns once the presses under way are done (True) or after
        ``timeout`` (False)."""
        with self._lock:
            self.paused.set()
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def resume(self) -> None:
        self.paused.clear()

    # -- control --------------------------------------------------------------------------
    def node(self, node_id: str) -> SimNode:
        node = self.nodes.get(node_id)
        if node is None:
            raise FaultError(f"no node {node_id!r} here")
        return node

    def apply(self, command: str, args: list[str]) -> dict[str, Any]:
        """One control command (see :mod:`thanthien.sim.control`); raises FaultError."""
        if command in ("pause", "resume"):
            idle = self.pause() if command == "pause" else (self.resume() or True)
            return {"paused": self.paused.is_set(), "idle": idle}
        if command == "status":
            nodes = [self.nodes[a].status() for a in args if a in self.nodes] if args else None
            result: dict[str, Any] = {"nodes": len(self.nodes), "connected": self.connected(),
                                      "presses": self.presses, "paused": self.paused.is_set(),
                                      "outbox": self.outbox_depth()}
            if nodes is not None:
                result["detail"] = nodes
            return result
        node = self.node(args[0])
        if command == "cut":
            node.cut(args[1] if len(args) > 1 else "blackhole")  # type: ignore[arg-type]
        elif command == "restore":
            node.restore()
        elif command == "kill":
            node.kill()
        elif command == "revive":
            node.revive()
        elif command == "camera":
            node.camera(args[1], args[2])
        elif command in ("mute", "unmute"):
            node.mute(command == "mute")
        elif command == "press":
            node.press(int(args[1]), int(args[2]))
        else:
            raise FaultError(f"unknown command {command!r}")
        return node.status()
