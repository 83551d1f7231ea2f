"""The reported state of one camera, with hysteresis: a new state is reported only after
``hold_checks`` checks in a row point to it, so one lost packet does not page anyone.

The very first check sets the state at once (there is nothing to flap from). ``since`` is
when the held run began, i.e. when the camera really entered the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from thanthien.edge.cameras.check import CameraState, Observation
from thanthien.protocol.payloads import CameraHealth


@dataclass(frozen=True)
class Verdict:
    health: CameraHealth
    changed: bool


class HealthTracker:
    def __init__(self, node: str, camera: str, hold_checks: int) -> None:
        if hold_checks < 1:
            raise ValueError("hold_checks must be at least 1")
        self.node = node
        self.camera = camera
        self.hold_checks = hold_checks
        self.health: CameraHealth | None = None
        self._pending: list[Observation] = []

    def observe(self, obs: Observation) -> Verdict:
        current = self.health
        if current is None or obs.state == current.state:
            self._pending.clear()
            since = obs.at if current is None else current.since
            return self._set(obs.state, obs.reason, since, obs, changed=current is None)
        if self._pending and self._pending[0].state != obs.state:
            self._pending.clear()
        self._pending.append(obs)
        if len(self._pending) >= self.hold_checks:
            since = self._pending[0].at
            self._pending.clear()
            return self._set(obs.state, obs.reason, since, obs, changed=True)
        # not held long enough: keep the state and its reason, refresh the time
        return self._set(current.state, current.reason, current.since, obs, changed=False,
                         keep_metrics=True)

    def _set(self, state: CameraState, reason: str, since: datetime, obs: Observation, *, changed: bool,
             keep_metrics: bool = False) -> Verdict:
        src = self.health if keep_metrics and self.health is not None else obs
        self.health = CameraHealth(
            node=self.node, camera=self.camera, state=state, reason=reason[:500], since=since,
            at=obs.at, connect_ms=src.connect_ms, brightness=src.brightness, contrast=src.contrast,
        )
        return Verdict(self.health, changed)
