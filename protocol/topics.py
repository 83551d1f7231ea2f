"""The versioned topic tree: one table of specs, builders and a parser over it.

``{root}`` is ``thanthien/v1`` by default; a deployment may prefix it (e.g. per province)
but the ``v1`` level is the protocol version and changes only with an incompatible payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from paho.mqtt.client import topic_matches_sub

from thanthien.protocol import payloads as p

PROTOCOL_VERSION = 1
DEFAULT_ROOT = f"thanthien/v{PROTOCOL_VERSION}"

Publisher = Literal["hub", "node"]


@dataclass(frozen=True)
class TopicSpec:
    """One kind of topic: its pattern below the root and how it is used."""

    kind: str
    pattern: str  # below the root; {node} and {camera}/{name} are single levels
    publisher: Publisher
    qos: int
    retained: bool
    payload: type[p.Payload]
    description: str
    acked: bool = False
    """A node event: kept in the node's outbox and re-sent until the hub, after committing it,
    publishes an :class:`~thanthien.protocol.payloads.Ack` whose ``kind`` is this kind."""

    def __post_init__(self) -> None:
        if self.acked and (self.publisher != "node" or "event_id" not in self.payload.model_fields):
            raise ValueError(f"topic kind {self.kind!r}: only node events with an event_id are acked")

    @property
    def wildcard(self) -> str:
        """The pattern with every placeholder replaced by ``+`` (for subscriptions)."""
        levels = ["+" if lvl.startswith("{") else lvl for lvl in self.pattern.split("/")]
        return "/".join(levels)

    @property
    def placeholders(self) -> frozenset[str]:
        """The names of the pattern's ``{...}`` levels, e.g. ``{"node", "camera"}``."""
        return frozenset(lvl[1:-1] for lvl in self.pattern.split("/") if lvl.startswith("{"))


SPECS: tuple[TopicSpec, ...] = (
    TopicSpec("hub_state", "hub/state", "hub", 1, True, p.HubState,
              "Hub presence. Its Last Will is `offline`. It is also the hub's **time beacon**: every "
              "`health.heartbeat_s / 2` the hub sends `online` with `at` = its time again, *not* "
              "retained and at QoS 0 (the retained copy keeps its connect time). Nodes subscribe at "
              "QoS 0, so nothing queued while a node was away arrives late, and compare `at` with "
              "their clock; a message delivered as retained is never used for that."),
    TopicSpec("node_state", "node/{node}/state", "node", 1, True, p.NodeState,
              "Node presence: `online` on connect, `offline` on a clean stop, `lost` as the "
              "Last Will. `session` grows on every start so a late Will of an old session "
              "cannot mark a new one lost."),
    TopicSpec("telemetry", "node/{node}/telemetry", "node", 0, False, p.Telemetry,
              "Vitals every `telemetry.interval_s` (default 30 s)."),
    TopicSpec("rating", "node/{node}/event/rating", "node", 1, False, p.RatingEvent,
              "One citizen rating. Re-sent until the hub acks its `event_id`.", acked=True),
    TopicSpec("playback", "node/{node}/event/playback", "node", 1, False, p.PlaybackEvent,
              "What a speaker did with one occurrence. Re-sent until acked.", acked=True),
    TopicSpec("camera_health", "node/{node}/camera/{camera}/health", "node", 1, True,
              p.CameraHealth, "Camera state on every change and at an interval."),
    TopicSpec("command_result", "node/{node}/reply", "node", 1, False, p.CommandResult,
              "Answer to a command; carries the command's MQTT v5 correlation data."),
    TopicSpec("ack", "node/{node}/ack", "hub", 1, False, p.Ack,
              "Event ids the hub has committed to its database."),
    TopicSpec("plan", "node/{node}/plan", "hub", 1, True, p.Plan,
              "The node's broadcast plan for the coming days, replaced as a whole."),
    TopicSpec("command", "node/{node}/cmd/{name}", "hub", 1, False, p.Command,
              "A command (`ping`, `identify`, `reload-config`, `play-now`, ...). MQTT v5 "
              "response topic and correlation data say where the result goes."),
    TopicSpec("live", "node/{node}/live", "hub", 0, False, p.LiveFrame,
              "A live announcement from an officer's browser as it is spoken: `start`, `audio` "
              "frames, `end`. QoS 0: a late piece of a voice is worth nothing."),
    TopicSpec("node_config", "node/{node}/config", "hub", 1, True, p.NodeConfig,
              "The node's configuration as the hub holds it (devices, camera probes, speaker volume "
              "and warm-up, ...), versioned and replaced as a whole. The node validates it with the "
              "models of its local file, applies what it can live, keeps the last good version "
              "across restarts and answers on `config/status`."),
    TopicSpec("config_status", "node/{node}/config/status", "node", 1, True, p.ConfigStatus,
              "The config version the node runs, or the version it refused and why; on every "
              "connect and after every config received."),
    TopicSpec("camera_thumbnail", "node/{node}/camera/{camera}/thumbnail", "node", 1, False,
              p.CameraThumbnail,
              "The picture the camera probe last saw (small greyscale JPEG), with each change of "
              "the camera's health."),
    TopicSpec("release_offer", "node/{node}/release", "hub", 1, True, p.ReleaseOffer,
              "The agent release the node should run (a roll-out's offer): version, bundle URL and its "
              "sha256. Retained, so a node that was away takes it when it returns; cleared when the "
              "roll-out is cancelled or stopped."),
    TopicSpec("release_status", "node/{node}/release/status", "node", 1, True, p.ReleaseStatus,
              "The node's state with a release (offered, downloading, verified, installed, running, kept, "
              "rolled_back, failed, with the reason) and the version it runs; on every step and connect."),
)

SPEC_BY_KIND = {s.kind: s for s in SPECS}

EVENT_KINDS: tuple[str, ...] = tuple(s.kind for s in SPECS if s.acked)
"""The node event kinds, in table order: what a node stores in its outbox and the hub acks.
:data:`~thanthien.protocol.payloads.EventKind` spells them for type hints and the ``Ack``
model; tests/protocol checks that the two agree."""


@dataclass(frozen=True)
class ParsedTopic:
    kind: str
    node: str | None = None
    camera: str | None = None
    name: str | None = None


class Topics:
    """Topic builders bound to one root."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        if not root or root.startswith("/") or root.endswith("/") or any(c in root for c in "+#"):
            raise ValueError(f"invalid topic root {root!r}")
        self.root = root

    def for_kind(self, kind: str, **values: str) -> str:
        """The concrete topic of any kind in the table, its placeholders given by name, e.g.
        ``for_kind("camera_health", node="mo-quay", camera="cam-2")``."""
        spec = SPEC_BY_KIND.get(kind)
        if spec is None:
            raise ValueError(f"unknown topic kind {kind!r}")
        if set(values) != spec.placeholders:
            raise ValueError(f"topic kind {kind!r} takes {sorted(spec.placeholders)}, got {sorted(values)}")
        return f"{self.root}/" + spec.pattern.format(**values)

    def event(self, kind: str, node: str) -> str:
        """The topic a node publishes its events of ``kind`` (one of :data:`EVENT_KINDS`) on."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"{kind!r} is not a node event kind (one of {', '.join(EVENT_KINDS)})")
        return self.for_kind(kind, node=node)

    def hub_state(self) -> str:
        return self.for_kind("hub_state")

    def node_state(self, node: str) -> str:
        return self.for_kind("node_state", node=node)

    def telemetry(self, node: str) -> str:
        return self.for_kind("telemetry", node=node)

    def rating(self, node: str) -> str:
        return self.event("rating", node)

    def playback(self, node: str) -> str:
        return self.event("playback", node)

    def camera_health(self, node: str, camera: str) -> str:
        return self.for_kind("camera_health", node=node, camera=camera)

    def command_result(self, node: str) -> str:
        return self.for_kind("command_result", node=node)

    def ack(self, node: str) -> str:
        return self.for_kind("ack", node=node)

    def plan(self, node: str) -> str:
        return self.for_kind("plan", node=node)

    def command(self, node: str, name: str) -> str:
        return self.for_kind("command", node=node, name=name)

    def live(self, node: str) -> str:
        return self.for_kind("live", node=node)

    def node_config(self, node: str) -> str:
        return self.for_kind("node_config", node=node)

    def config_status(self, node: str) -> str:
        return self.for_kind("config_status", node=node)

    def camera_thumbnail(self, node: str, camera: str) -> str:
        return self.for_kind("camera_thumbnail", node=node, camera=camera)

    def release_offer(self, node: str) -> str:
        return self.for_kind("release_offer", node=node)

    def release_status(self, node: str) -> str:
        return self.for_kind("release_status", node=node)

    def wildcard(self, kind: str) -> str:
        """Subscription filter for every topic of one kind, e.g. all nodes' ratings."""
        return f"{self.root}/{SPEC_BY_KIND[kind].wildcard}"

    def parse(self, topic: str) -> ParsedTopic | None:
        """Which kind a concrete topic is, with its placeholders; ``None`` if unknown."""
        prefix = self.root + "/"
        if not topic.startswith(prefix):
            return None
        rest = topic[len(prefix):]
        for spec in SPECS:
            if topic_matches_sub(spec.wildcard, rest):
                values = _placeholders(spec.pattern, rest)
                return ParsedTopic(kind=spec.kind, **values)
        return None


def _placeholders(pattern: str, topic: str) -> dict[str, str]:
    out = {}
    for lvl, val in zip(pattern.split("/"), topic.split("/"), strict=True):
        if lvl.startswith("{"):
            out[lvl[1:-1]] = val
    return out
