"""Runs the checks of every configured camera, each on its own thread, and hands the
resulting :class:`~thanthien.protocol.payloads.CameraHealth` to a ``publish`` callback on
every change of state and at least every ``publish_interval_s``.

One thread per camera: a probe that hangs until its timeout delays only its own camera,
never the other cameras nor the rest of the agent. Threads wait on the stop event between
checks, so :meth:`CameraMonitor.close` ends them at once (or after the running probe's
timeout at worst; the threads are daemons and never hold the process).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from thanthien.edge.cameras.check import CameraChecker, Observation
from thanthien.edge.cameras.config import CameraSection
from thanthien.edge.cameras.picture import Thumbnail
from thanthien.edge.cameras.state import HealthTracker
from thanthien.protocol.payloads import CameraHealth

log = logging.getLogger(__name__)

Publish = Callable[[CameraHealth], None]
ObservationHook = Callable[[str, Observation], None]
ChangeHook = Callable[[CameraHealth, Thumbnail | None], None]
"""Called with each change of a camera's reported state and the picture that check saw."""


class CameraMonitor:
    def __init__(self, node: str, cameras: list[CameraSection], publish: Publish,
                 on_observation: ObservationHook | None = None, on_change: ChangeHook | None = None) -> None:
        self.node = node
        self.cameras = list(cameras)
        self._publish = publish
        self._on_observation = on_observation
        self._on_change = on_change
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._latest: dict[str, CameraHealth] = {}

    def start(self) -> None:
        if self._threads:
            return
        for cam in self.cameras:
            t = threading.Thread(target=self._run, args=(cam,), name=f"camera-{cam.id}", daemon=True)
            self._threads.append(t)
            t.start()
        log.info("monitoring %d camera(s)", len(self.cameras))

    def close(self, timeout: float = 2.0) -> None:
        """Stop every camera thread; safe to call twice."""
        self._stop.set()
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
            if t.is_alive():
                log.warning("%s still in a probe at close; left to finish on its own", t.name)

    def __enter__(self) -> CameraMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def latest(self, camera: str) -> CameraHealth | None:
        with self._lock:
            return self._latest.get(camera)

    def _run(self, cam: CameraSection) -> None:
        checker = CameraChecker(cam)
        tracker = HealthTracker(self.node, cam.id, cam.hold_checks)
        last_publish = float("-inf")
        delay = 0.0
        while not self._stop.wait(delay):
            started = time.monotonic()
            try:
                obs = checker.check()
            except Exception:  # a bug in one probe must not end the camera's monitoring
                log.exception("camera %s: check failed unexpectedly", cam.id)
                delay = cam.interval_s
                continue
            if self._stop.is_set():
                return
            if self._on_observation is not None:
                try:
                    self._on_observation(cam.id, obs)
                except Exception:
                    log.exception("camera %s: observation hook failed", cam.id)
            before = tracker.health
            verdict = tracker.observe(obs)
            with self._lock:
                self._latest[cam.id] = verdict.health
            if verdict.changed:
                old = before.state if before else "unknown"
                log.info("camera %s: %s -> %s: %s", cam.id, old, verdict.health.state, verdict.health.reason)
                if self._on_change is not None:
                    try:
                        self._on_change(verdict.health, checker.last_picture)
                    except Exception:
                        log.exception("camera %s: change hook failed", cam.id)
            now = time.monotonic()
            if verdict.changed or now - last_publish >= cam.publish_interval_s:
                last_publish = now
                self._send(verdict.health)
            delay = max(0.0, cam.interval_s - (time.monotonic() - started))

    def _send(self, health: CameraHealth) -> None:
        try:
            self._publish(health)
        except Exception:
            log.exception("camera %s: publishing health failed", health.camera)
