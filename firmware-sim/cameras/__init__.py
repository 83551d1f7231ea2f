"""Simulated IP cameras on loopback (RTSP responder + HTTP snapshot server) for the camera
probes' tests, the demo and the fleet runner."""

from thanthien.sim.cameras.auth import AuthPolicy
from thanthien.sim.cameras.behaviour import MODES, Mode
from thanthien.sim.cameras.camera import SimCamera

__all__ = ["MODES", "AuthPolicy", "Mode", "SimCamera"]
