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

    @property
    def wildcard(self) -> str:
        """The pattern with every placeholder replaced by ``+`` (for subscriptions)."""
        levels = ["+" if lvl.startswith("{") else lvl for lvl in self.pattern.split("/")]
        return "/".join(levels)


SPECS: tuple[TopicSpec, ...] = (
    TopicSpec("hub_state", "hub/state", "hub", 1, True, p.HubState,
              "Hub presence. Its Last Will is `offline`."),
    TopicSpec("node_state", "node/{node}/state", "node", 1, True, p.NodeState,
              "Node presence: `online` on connect, `offline` on a clean stop, `lost` as the "
              "Last Will. `session` grows on every start so a late Will of an old session "
              "cannot mark a new one lost."),
    TopicSpec("telemetry", "node/{node}/telemetry", "node", 0, False, p.Telemetry,
              "Vitals every `telemetry.interval_s` (default 30 s)."),
    TopicSpec("rating", "node/{node}/event/rating", "node", 1, False, p.RatingEvent,
              "One citizen rating. Re-sent until the hub acks its `event_id`."),
    TopicSpec("playback", "node/{node}/event/playback", "node", 1, False, p.PlaybackEvent,
              "What a speaker did with one occurrence. Re-sent until acked."),
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
)

SPEC_BY_KIND = {s.kind: s for s in SPECS}


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

    def _build(self, kind: str, **values: str) -> str:
        return f"{self.root}/" + SPEC_BY_KIND[kind].pattern.format(**values)

    def hub_state(self) -> str:
        return self._build("hub_state")

    def node_state(self, node: str) -> str:
        return self._build("node_state", node=node)

    def telemetry(self, node: str) -> str:
        return self._build("telemetry", node=node)

    def rating(self, node: str) -> str:
        return self._build("rating", node=node)

    def playback(self, node: str) -> str:
        return self._build("playback", node=node)

    def camera_health(self, node: str, camera: str) -> str:
        return self._build("camera_health", node=node, camera=camera)

    def command_result(self, node: str) -> str:
        return self._build("command_result", node=node)

    def ack(self, node: str) -> str:
        return self._build("ack", node=node)

    def plan(self, node: str) -> str:
        return self._build("plan", node=node)

    def command(self, node: str, name: str) -> str:
        return self._build("command", node=node, name=name)

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
