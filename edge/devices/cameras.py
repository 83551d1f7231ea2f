"""The camera probes as an edge agent device: configured cameras are monitored while the
agent runs, and each camera's health goes out retained on
``{root}/node/{node}/camera/{camera}/health``.

The hub holds a node's cameras unknown while the node is away and until it reports them
again, so each camera's latest health goes out again whenever the hub's retained presence
arrives: after every (re)connect (subscriptions are made again) and when the hub comes back."""

from __future__ import annotations

from thanthien.edge.cameras.config import CameraSection
from thanthien.edge.cameras.monitor import CameraMonitor
from thanthien.edge.context import Capability, DeviceContext
from thanthien.edge.settings import EdgeSettings
from thanthien.mqtt import Message
from thanthien.protocol.payloads import CameraHealth


class CameraProbes:
    name = "cameras"
    capability: Capability | None = "camera"

    def __init__(self, cameras: list[CameraSection]) -> None:
        self.cameras = cameras
        self.monitor: CameraMonitor | None = None

    def start(self, context: DeviceContext) -> None:
        node, topics = context.node_id, context.topics

        def publish(health: CameraHealth) -> None:
            context.publish(topics.camera_health(node, health.camera), health, qos=1, retain=True)

        monitor = CameraMonitor(node, self.cameras, publish)
        self.monitor = monitor

        def send_again(_message: Message) -> None:
            for cam in self.cameras:
                if (health := monitor.latest(cam.id)) is not None:
                    publish(health)

        context.route(topics.hub_state(), send_again)
        monitor.start()

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()


def from_settings(settings: EdgeSettings) -> list[CameraProbes]:
    return [CameraProbes(settings.cameras)] if settings.cameras else []
