"""The camera probes as an edge agent device: configured cameras are monitored while the
agent runs, and each camera's health goes out retained on
``{root}/node/{node}/camera/{camera}/health``.

The hub holds a node's cameras unknown while the node is away and until it reports them
again, so each camera's latest health goes out again whenever the hub's retained presence
arrives: after every (re)connect (subscriptions are made again) and when the hub comes back.

With each change of a camera's state the picture that check saw goes out too, as a small grey
JPEG on ``camera/{camera}/thumbnail`` (not retained), so IT see a black or frozen picture on the
node page before driving out."""

from __future__ import annotations

import base64
import logging

from thanthien.edge.cameras.config import CameraSection
from thanthien.edge.cameras.ffmpeg import encode_jpeg
from thanthien.edge.cameras.monitor import CameraMonitor
from thanthien.edge.cameras.picture import Thumbnail
from thanthien.edge.cameras.wire import ProbeError
from thanthien.edge.context import Capability, DeviceContext
from thanthien.edge.settings import EdgeSettings
from thanthien.mqtt import Message
from thanthien.protocol.payloads import MAX_THUMBNAIL_BYTES, CameraHealth, CameraThumbnail

log = logging.getLogger(__name__)


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

        def picture(health: CameraHealth, thumb: Thumbnail | None) -> None:
            if thumb is None:
                return  # nothing seen (the camera is down)
            try:
                jpeg = encode_jpeg(thumb)
            except ProbeError as exc:
                log.warning("camera %s: no thumbnail sent (%s)", health.camera, exc.reason)
                return
            if len(jpeg) > MAX_THUMBNAIL_BYTES:
                log.warning("camera %s: thumbnail of %d bytes not sent", health.camera, len(jpeg))
                return
            context.publish(topics.camera_thumbnail(node, health.camera), CameraThumbnail(
                node=node, camera=health.camera, state=health.state, at=health.at,
                jpeg_b64=base64.b64encode(jpeg).decode()), qos=1)

        monitor = CameraMonitor(node, self.cameras, publish, on_change=picture)
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
