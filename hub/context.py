"""What the API, the ingest and the scheduler jobs of one hub process share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from thanthien.hub.db.session import Database
from thanthien.hub.metrics import Metrics
from thanthien.hub.services.alarms import SpikeRule
from thanthien.hub.services.health import Thresholds
from thanthien.hub.services.media import MediaLibrary
from thanthien.hub.services.media_items import library
from thanthien.hub.settings import HubSettings
from thanthien.mqtt import MqttLink
from thanthien.protocol import Topics
from thanthien.protocol.payloads import utc_now


@dataclass
class HubContext:
    settings: HubSettings
    db: Database
    metrics: Metrics = field(default_factory=Metrics)
    mqtt: MqttLink | None = None
    clock: Callable[[], datetime] = utc_now
    queue_depth: Callable[[], int] = lambda: 0
    heard_until: Callable[[], datetime | None] = lambda: None
    """Up to when this process's ingest has taken in what the broker delivered: the last moment its
    queue was empty with every earlier message committed (:meth:`IngestWorker.heard_until`);
    ``None`` in a process without ingest. Heartbeat expiry counts silence only up to then: a node
    whose telemetry waits in the hub's own backlog is not silent."""

    @cached_property
    def topics(self) -> Topics:
        return Topics(self.settings.mqtt.root)

    @cached_property
    def media(self) -> MediaLibrary:
        """The media library of this hub (built once per process, not per request)."""
        return library(self.settings.hub.data_dir, self.settings.media)

    @property
    def notify(self) -> bool:
        """Alarm events are queued for the webhook only when one is configured."""
        return self.settings.alarms.webhook_url is not None

    @property
    def thresholds(self) -> Thresholds:
        a = self.settings.alarms
        return Thresholds(outbox_depth_max=a.outbox_depth_max, disk_used_pct_max=a.disk_used_pct_max,
                          cpu_temp_c_max=a.cpu_temp_c_max, clock_offset_ms_max=a.clock_offset_ms_max)

    @property
    def spike_rule(self) -> SpikeRule:
        a = self.settings.alarms
        return SpikeRule(window_min=a.spike_window_min, min_presses=a.spike_min_presses, ratio=a.spike_ratio)
