"""Simulated cameras on loopback for the camera probe tests, and helpers.

Not a conftest.py: a second module named ``conftest`` would replace the root one in
``sys.modules`` and break ``from conftest import ...`` in the other test folders. Test
modules import the fixtures they use from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support import EventCollector
from thanthien.edge.cameras.check import Observation
from thanthien.edge.cameras.config import CameraSection
from thanthien.protocol.payloads import CameraHealth
from thanthien.sim.cameras import AuthPolicy, SimCamera

USER = "admin"
PASSWORD = "Bí-mật 7&x"
"""Non-ASCII and URL-special characters on purpose."""


@pytest.fixture(name="sim_factory")
def sim_factory_fixture() -> Iterator[Callable[..., SimCamera]]:
    cams: list[SimCamera] = []

    def make(**auth: Any) -> SimCamera:
        slow = auth.pop("slow_delay_s", 0.5)
        hang_up = auth.pop("hang_up_after_401", False)
        cam = SimCamera(AuthPolicy(**{"username": USER, "password": PASSWORD, **auth}), slow_delay_s=slow,
                        hang_up_after_401=hang_up)
        cams.append(cam.start())
        return cam

    yield make
    for cam in cams:
        cam.close()


@pytest.fixture(name="sim")
def sim_fixture(sim_factory: Callable[..., SimCamera]) -> SimCamera:
    """A Digest (MD5, qop=auth) camera in mode ``ok``."""
    return sim_factory()


def camera_config(cam: SimCamera, snapshot: bool = True, **overrides: Any) -> CameraSection:
    """Config for one simulated camera with test-sized timeouts and thresholds."""
    values: dict[str, Any] = {
        "id": "cam-1", "rtsp_url": cam.rtsp_url, "snapshot_url": cam.snapshot_url if snapshot else None,
        "username": USER, "password": PASSWORD, "interval_s": 0.1, "connect_timeout_s": 1.0,
        "rtsp_timeout_s": 2.0, "snapshot_timeout_s": 2.0, "frame_timeout_s": 5.0, "slow_ms": 300,
        "frozen_checks": 3, "hold_checks": 2,
    }
    values.update(overrides)
    return CameraSection(**values)


class Recorder:
    """Collects what a monitor observes and publishes; tests wait on it with timeouts."""

    def __init__(self) -> None:
        self.observations: list[tuple[str, Observation]] = []
        self._health = EventCollector[CameraHealth]()

    @property
    def published(self) -> list[CameraHealth]:
        return self._health.items

    def observe(self, camera: str, obs: Observation) -> None:
        with self._health.changing():
            self.observations.append((camera, obs))

    def publish(self, health: CameraHealth) -> None:
        self._health.add(health)

    def seen(self, camera: str) -> list[Observation]:
        with self._health.lock:
            return [o for c, o in self.observations if c == camera]

    def states(self, camera: str) -> list[str]:
        with self._health.lock:
            return [h.state for h in self.published if h.camera == camera]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Until ``predicate()`` holds over what was observed and published."""
        return self._health.wait_until(predicate, timeout)

    def wait_observations(self, camera: str, n: int, timeout: float = 10.0) -> bool:
        return self.wait_for(lambda: len([1 for c, _o in self.observations if c == camera]) >= n, timeout)

    def wait_state(self, camera: str, state: str, timeout: float = 10.0) -> CameraHealth:
        def found() -> bool:
            return any(h.camera == camera and h.state == state for h in self.published)

        if not self.wait_for(found, timeout):
            raise AssertionError(f"{camera} never published {state}; published {self.states(camera)}")
        return next(h for h in self.published if h.camera == camera and h.state == state)
