"""The hub under test in its own process (so its CPU is measured alone and it does not share
the GIL with the load generator), with every commit time-stamped.

The child runs :class:`~thanthien.hub.runtime.HubRuntime` with the roles asked for and
wraps its ingest worker's after-commit step: each batch's commit is recorded as
(``time.monotonic()`` after the commit and its acks, messages in the batch, acked event
ids). ``CLOCK_MONOTONIC`` is system-wide on Linux, so the parent can compare it with its own
clock readings."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from thanthien.bench.common import child_processes

log = logging.getLogger(__name__)


@dataclass
class Commits:
    times: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    acked: dict[str, float] = field(default_factory=dict)  # event id -> commit time
    errors: int = 0  # batches or messages the hub could not commit (thanthien_hub_ingest_errors_total)
    retries: int = 0  # batches that lost a database conflict and were retried (..._ingest_retries_total)

    @property
    def messages(self) -> int:
        return sum(self.sizes)


def _child(conn: Connection, settings: dict[str, Any], roles: tuple[str, ...], keep_ids: bool) -> None:
    # warnings (sequence gaps between shared workers, rating spike alarms of the random scores)
    # would flood the benchmark's output
    logging.basicConfig(level=logging.ERROR)
    from thanthien.hub.runtime import HubRuntime
    from thanthien.hub.settings import HubSettings

    runtime = HubRuntime(HubSettings(**settings), roles=roles)  # type: ignore[arg-type]
    commits = Commits()
    lock = threading.Lock()
    runtime.start()
    worker = runtime.worker
    if worker is not None:

        def after_commit(outcome: Any, size: int) -> None:
            now = time.monotonic()
            with lock:
                commits.times.append(now)
                commits.sizes.append(size)
                if keep_ids:
                    for ids in outcome.acks_for("rating").values():
                        for event_id in ids:
                            commits.acked[str(event_id)] = now

        worker.on_commit(after_commit)
    if runtime.link is not None:
        runtime.link.wait_connected(30)
        runtime.link.subscribed.wait(30)
    conn.send({"ready": True, "pid": os.getpid()})
    while True:
        command = conn.recv()
        if command == "stats":
            with lock:
                conn.send({"cpu_s": time.process_time(), "at": time.monotonic(),
                           "messages": commits.messages, "batches": len(commits.sizes),
                           "queue": worker.depth() if worker else 0})
        elif command == "stop":
            runtime.stop()
            commits.errors = int(runtime.ctx.metrics.value("thanthien_hub_ingest_errors_total"))
            commits.retries = int(runtime.ctx.metrics.value("thanthien_hub_ingest_retries_total"))
            with lock:
                conn.send(commits)
            return


class PipedProcess:
    """A benchmark child process driven over a pipe: ``start`` waits for its ready message,
    ``stats`` asks for figures while it runs, ``stop`` returns its commits."""

    what = "child process"

    def __init__(self, target: Any, args: tuple[Any, ...], name: str) -> None:
        ctx = child_processes()
        self._parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=target, args=(child, *args), name=name, daemon=True)
        self.pid: int | None = None

    def start(self, timeout: float = 120.0) -> PipedProcess:
        self._proc.start()
        if not self._parent.poll(timeout):
            self._proc.kill()
            raise RuntimeError(f"the {self.what} did not become ready")
        self._parent.recv()
        self.pid = self._proc.pid
        return self

    def stats(self) -> dict[str, Any]:
        self._parent.send("stats")
        return self._parent.recv()

    def stop(self, timeout: float = 60.0) -> Commits:
        self._parent.send("stop")
        if not self._parent.poll(timeout):
            self._proc.kill()
            raise RuntimeError(f"the {self.what} did not stop")
        commits = self._parent.recv()
        self._proc.join(10)
        return commits

    def kill(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


class HubProcess(PipedProcess):
    """The hub (``roles``) in its own process, so its CPU can be measured alone."""

    what = "hub process"

    def __init__(self, settings: dict[str, Any], roles: tuple[str, ...] = ("ingest",),
                 keep_ids: bool = False) -> None:
        super().__init__(_child, (settings, roles, keep_ids), "bench-hub")


def hub_settings(data_dir: str, port: int, password: str, *, database_url: str | None = None,
                 nodes: list[str] | None = None, boxes: bool = True, heartbeat_s: float = 30.0,
                 **ingest: Any) -> dict[str, Any]:
    """Hub settings with declared nodes (with a rating box at one of 50 counters unless
    ``boxes`` is false) on the bench broker."""
    nodes = nodes or []
    counters = sorted({f"quay-{i % 50 + 1}" for i in range(len(nodes))}) if boxes else []
    return {
        "hub": {"data_dir": data_dir},
        "http": {"secret_key": "bench-secret-key-0123456789"},
        "database": {"url": database_url},
        "mqtt": {"host": "127.0.0.1", "port": port, "username": "hub", "password": password,
                 "reconnect_min_s": 0.1, "reconnect_max_s": 1.0},
        "ingest": ingest,
        "health": {"heartbeat_s": heartbeat_s},
        "registry": {
            "counters": [{"code": c, "name": f"Quầy {c[5:]}"} for c in counters],
            "nodes": [{"id": n, "devices": [{"code": "box-1", "kind": "rating_box",
                                             "counter": f"quay-{i % 50 + 1}"}] if boxes else []}
                      for i, n in enumerate(nodes)],
        },
    }
