"""One simulated node: the real :class:`~thanthien.edge.agent.EdgeAgent` on mock hardware.

* rating boxes on a gpiozero ``MockFactory``, pressed through :class:`~thanthien.sim.pins.PinDriver`;
  every counted press goes to the :class:`~thanthien.sim.ledger.Ledger`;
* a speaker whose audio goes to a WAV sink (``<data_dir>/audio``, with ``playlog.jsonl``
  holding each clip's real start time), played on the node's own :class:`SimClock`;
* simulated cameras (:class:`~thanthien.sim.cameras.SimCamera`) on loopback, probed by the
  agent's real camera checks;
* optionally a :class:`~thanthien.sim.netcut.NetCut` between the node and the broker, so its
  network can be dropped (``cut``), and it can be killed (``kill``: the link is reset and the
  agent stops without a goodbye, so the broker fires its ``lost`` Will) and started again.

A node is configured one of two ways. With ``SimEnv.enroll`` (the demo town) it enrolls as a
real Pi does: once its cameras run, the hook gets a code from the hub, gives the hub the
values it holds for the node (:meth:`SimNode.hub_values`: the GPIO of its boxes and relay, its
cameras' addresses) and runs ``thanthien edge enroll``; the agent then starts from the bootstrap
file that wrote and the hub's config. Without it (a fleet) the node's whole config is built here,
with the broker password of its spec.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thanthien.config import read_toml, validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.audio import AudioOutput, NullOutput, WavSink
from thanthien.edge.devices.rating_box import PressOutcome, RatingBoxes
from thanthien.edge.settings import EdgeSettings
from thanthien.edge.sounds import THANK_YOU_FILE
from thanthien.edge.telemetry import SystemProbe
from thanthien.sim.acoustics import SimAcoustics, relay_pin_on
from thanthien.sim.cameras import SimCamera
from thanthien.sim.cameras.auth import AuthPolicy
from thanthien.sim.citizens import ScoreMix
from thanthien.sim.clock import SimClock
from thanthien.sim.ledger import Ledger
from thanthien.sim.netcut import Mode as CutMode
from thanthien.sim.netcut import NetCut
from thanthien.sim.pins import RELAY_PIN, PinDriver, box_pins

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoxSpec:
    id: str
    counter: str
    mix: ScoreMix = field(default_factory=ScoreMix)


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    password: str
    boxes: tuple[BoxSpec, ...] = ()
    cameras: tuple[str, ...] = ()
    speaker: bool = False
    site: str = ""
    clock_offset_s: float = 0.0

    @property
    def kind(self) -> str:
        parts = [p for p, present in (("rating", self.boxes), ("camera", self.cameras),
                                      ("speaker", self.speaker)) if present]
        return "+".join(parts) or "empty"


@dataclass
class SimEnv:
    """What every node of a fleet or town shares."""

    broker_host: str
    broker_port: int
    data_root: Path
    ledger: Ledger | None = None
    hub_url: str = "http://127.0.0.1:8080/api/v1/"
    telemetry_s: float = 30.0
    keepalive_s: int = 30
    resend_s: float = 60.0
    camera_interval_s: float = 60.0
    camera_publish_s: float = 300.0
    wav_thank_you: bool = False
    """Rating boxes play their thank-you into a WAV sink (the demo) instead of discarding it."""
    speaker_tokens: dict[str, str] = field(default_factory=dict)
    """Node id -> bearer token for media downloads, when the hub issued one."""
    enroll: Callable[[SimNode], Path] | None = None
    """Enrolls a node with the hub as a Pi does (``thanthien edge enroll``) and returns the
    bootstrap config it wrote; without it the node's config is built here (a fleet)."""

    @property
    def shared_sounds(self) -> Path:
        return self.data_root / "shared-sounds"


def prepare_sounds(env: SimEnv) -> None:
    """Render the thank-you once for all nodes (espeak-ng per node would cost minutes of CPU
    for a big fleet); nodes get a hard link to it."""
    from thanthien.edge.sounds import thank_you_clip

    target = env.shared_sounds / THANK_YOU_FILE
    if not target.exists():
        clip = thank_you_clip(env.shared_sounds)
        if not target.exists():  # no espeak-ng: keep the chime so nodes do not try again
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(clip.to_wav())


class SimNode:
    def __init__(self, spec: NodeSpec, env: SimEnv, *, faultable: bool = False, seed: int = 0) -> None:
        self.spec = spec
        self.env = env
        self.node_id = spec.node_id
        self.data_dir = env.data_root / "nodes" / spec.node_id
        self.clock = SimClock(spec.clock_offset_s)
        self.rng = random.Random(f"{seed}:{spec.node_id}")
        self.faultable = faultable
        self.netcut: NetCut | None = None
        self.cameras: dict[str, SimCamera] = {}
        self.agent: EdgeAgent | None = None
        self.driver: PinDriver | None = None
        self.audio: AudioOutput | None = None
        self.acoustics = SimAcoustics(relay_pin_on(lambda: self.agent.pin_factory if self.agent else None,
                                                   RELAY_PIN), seed=self.rng.randrange(2**32))
        """The microphone by the horn (proof of play); ``mute`` is the dead-amplifier fault."""
        self.stop_event = threading.Event()
        self.killed = False
        self.bootstrap: Path | None = None
        """The config ``thanthien edge enroll`` wrote, once the node enrolled."""
        self._lock = threading.Lock()

    # -- configuration --------------------------------------------------------------------
    def _broker(self) -> tuple[str, int]:
        if self.netcut is not None:
            return "127.0.0.1", self.netcut.port
        return self.env.broker_host, self.env.broker_port

    def _box_hardware(self) -> dict[str, dict[str, Any]]:
        out = {}
        for i, box in enumerate(self.spec.boxes):
            pins = box_pins(i, len(self.spec.boxes))
            out[box.id] = {"led_pin": pins.led, "buttons": [{"pin": pins.buttons[score], "score": score,
                                                            "label": label} for score, label in _LABELS]}
        return out

    def _camera_probes(self) -> dict[str, dict[str, Any]]:
        env = self.env
        return {cam_id: {"rtsp_url": cam.rtsp_url, "snapshot_url": cam.snapshot_url,
                         "username": cam.auth.username, "password": cam.auth.password,
                         "interval_s": env.camera_interval_s, "publish_interval_s": env.camera_publish_s}
                for cam_id, cam in self.cameras.items()}

    def hub_values(self) -> dict[str, Any]:
        """What the hub must hold for this node to drive its simulated hardware (the body of
        ``PUT /api/v1/nodes/{id}/config``): box GPIO, camera addresses, the relay, telemetry."""
        values: dict[str, Any] = {"devices": {**self._box_hardware(), **self._camera_probes()},
                                  "telemetry_interval_s": self.env.telemetry_s}
        if self.spec.speaker:
            values["speaker"] = {"relay_pin": RELAY_PIN, "warmup_s": 0.2, "relay_off_delay_s": 1.0}
        return values

    def settings(self) -> EdgeSettings:
        if self.bootstrap is not None:
            return self._enrolled_settings(self.bootstrap)
        s, env = self.spec, self.env
        host, port = self._broker()
        data: dict[str, Any] = {
            "node": {"id": s.node_id, "site": s.site, "hardware": "mock", "data_dir": str(self.data_dir)},
            "mqtt": {"host": host, "port": port, "password": s.password, "keepalive_s": env.keepalive_s,
                     "reconnect_min_s": 0.5, "reconnect_max_s": 10.0},
            "telemetry": {"interval_s": env.telemetry_s},
            "outbox": {"resend_interval_s": env.resend_s},
            "audio": {"output": "null"},
        }
        hardware = self._box_hardware()
        data["rating_boxes"] = [{"id": box.id, "counter": box.counter, **hardware[box.id]} for box in s.boxes]
        data["cameras"] = [{"id": cam_id, **probe} for cam_id, probe in self._camera_probes().items()]
        if s.speaker:
            speakers: dict[str, Any] = {"hub_url": env.hub_url, "relay_pin": RELAY_PIN, "warmup_s": 0.2,
                                        "relay_off_delay_s": 1.0}
            token = env.speaker_tokens.get(s.node_id)
            if token:
                speakers["token"] = token
            data["speakers"] = speakers
        return validate_data(EdgeSettings, data, f"<sim node {s.node_id}>")

    def _enrolled_settings(self, bootstrap: Path) -> EdgeSettings:
        """The enrolled bootstrap, pointed at this node's broker path (its NetCut) and sound; the
        devices come from the hub's config the agent merges over it."""
        data = read_toml(bootstrap)
        host, port = self._broker()
        data["mqtt"].update(host=host, port=port, keepalive_s=self.env.keepalive_s, reconnect_min_s=0.5,
                            reconnect_max_s=10.0)
        data["outbox"] = {"resend_interval_s": self.env.resend_s}
        data["audio"] = {"output": "null"}
        return validate_data(EdgeSettings, data, str(bootstrap))

    # -- life -----------------------------------------------------------------------------
    def start(self) -> SimNode:
        with self._lock:
            if self.faultable and self.netcut is None:
                self.netcut = NetCut(self.env.broker_port, target_host=self.env.broker_host).start()
            for cam_id in self.spec.cameras:
                if cam_id not in self.cameras:
                    self.cameras[cam_id] = SimCamera(AuthPolicy()).start()
            if self.env.enroll is not None and self.bootstrap is None:
                self.bootstrap = self.env.enroll(self)
            self._start_agent()
        return self

    def _start_agent(self) -> None:
        self._link_sounds()
        if self.spec.speaker or self.env.wav_thank_you:
            hears = self.acoustics if self.spec.speaker else None
            self.audio = WavSink(self.data_dir / "audio", realtime=True, hears=hears)
        else:
            self.audio = NullOutput()
        probe = SystemProbe(self.data_dir, run=self.clock.runner())
        agent = EdgeAgent(self.settings(), audio=self.audio, probe=probe)
        agent.start()
        self.agent = agent
        self.killed = False
        self.driver = PinDriver(agent.pin_factory, self.stop_event)  # type: ignore[arg-type]
        if self.spec.boxes:
            agent.device(RatingBoxes).add_listener(self._on_press)
        self._apply_clock(agent)

    def _apply_clock(self, agent: EdgeAgent) -> None:
        """The speaker plays on the node's clock (the player reads its clock every loop)."""
        if not self.spec.speaker:
            return
        from thanthien.edge.devices.speaker import SpeakerDevice

        player = agent.device(SpeakerDevice).player
        if player is not None:
            player.clock = self.clock.time

    def _link_sounds(self) -> None:
        shared = self.env.shared_sounds / THANK_YOU_FILE
        target = self.data_dir / "sounds" / THANK_YOU_FILE
        if target.exists() or not shared.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(shared, target)
        except OSError:
            shutil.copyfile(shared, target)

    def _on_press(self, outcome: PressOutcome) -> None:
        if self.env.ledger is not None:
            self.env.ledger.record(self.node_id, outcome)

    @property
    def running(self) -> bool:
        return self.agent is not None and not self.killed

    @property
    def connected(self) -> bool:
        agent = self.agent
        return agent is not None and agent.link is not None and agent.link.connected.is_set()

    def stop(self) -> None:
        """Clean stop (retained ``offline``), simulators closed. Safe twice."""
        self.stop_event.set()
        with self._lock:
            if self.agent is not None:
                self.agent.stop()
            if self.audio is not None:
                self.audio.close()
            for cam in self.cameras.values():
                cam.close()
            if self.netcut is not None:
                self.netcut.close()

    # -- citizens ---------------------------------------------------------------------------
    def press(self, box_index: int, score: int, *, bouncy: bool = False) -> bool:
        """Press the ``score`` button of box ``box_index``; False if the node is not running."""
        driver, agent = self.driver, self.agent
        if driver is None or agent is None or self.killed:
            return False
        pins = box_pins(box_index, len(self.spec.boxes))
        return driver.press(pins.buttons[score], self.rng, bouncy=bouncy)

    # -- faults ---------------------------------------------------------------------------
    def cut(self, mode: CutMode = "blackhole") -> None:
        """Drop the node's network: ``reset`` (refused at once) or ``blackhole`` (silent)."""
        if self.netcut is None:
            raise FaultError(f"{self.node_id} was not started behind a NetCut (not faultable)")
        self.netcut.set_mode(mode)

    def restore(self) -> None:
        if self.netcut is None:
            raise FaultError(f"{self.node_id} was not started behind a NetCut (not faultable)")
        self.netcut.set_mode("pass")

    def kill(self) -> None:
        """Die as a power cut would: the connection drops without a DISCONNECT (the broker
        publishes the ``lost`` Will), the agent's threads end, its outbox stays on disk."""
        if self.netcut is None:
            raise FaultError(f"{self.node_id} was not started behind a NetCut (not faultable)")
        with self._lock:
            agent = self.agent
            if agent is None or self.killed:
                return
            self.netcut.set_mode("reset")
            if agent.link is not None:
                waiter = threading.Event()
                for _ in range(50):  # until paho noticed the reset (so no goodbye is attempted)
                    if not agent.link.connected.is_set() or waiter.wait(0.05):
                        break
            self.killed = True
            agent.stop()
            if self.audio is not None:
                self.audio.close()

    def revive(self) -> None:
        """Start a killed node again on the same data (session + 1, outbox re-sent)."""
        with self._lock:
            if not self.killed:
                return
            if self.netcut is not None:
                self.netcut.set_mode("pass")
            self._start_agent()

    def mute(self, on: bool = True) -> None:
        """The amplifier goes dead (``on``) or works again: the speaker still sends audio and
        its microphone hears only the background."""
        if not self.spec.speaker:
            raise FaultError(f"{self.node_id} has no speaker")
        if on:
            self.acoustics.mute()
        else:
            self.acoustics.unmute()

    def camera(self, camera_id: str, mode: str) -> None:
        cam = self.cameras.get(camera_id)
        if cam is None:
            raise FaultError(f"{self.node_id} has no camera {camera_id!r} "
                             f"(cameras: {', '.join(self.cameras) or 'none'})")
        cam.set_mode(mode)  # type: ignore[arg-type]

    def status(self) -> dict[str, Any]:
        agent = self.agent
        depth = None
        if agent is not None and agent.outbox is not None and not self.killed:
            with contextlib.suppress(Exception):
                depth = agent.outbox.depth()
        return {"node": self.node_id, "kind": self.spec.kind, "connected": self.connected,
                "killed": self.killed, "cut": self.netcut.mode if self.netcut else None,
                "outbox": depth, "cameras": {k: c.mode for k, c in self.cameras.items()},
                "muted": self.acoustics.muted if self.spec.speaker else None}


class FaultError(RuntimeError):
    """A fault that cannot be applied (unknown node or camera, node not faultable)."""


_LABELS = ((4, "Rất hài lòng"), (3, "Hài lòng"), (2, "Bình thường"), (1, "Không hài lòng"))
