"""Health, alarm, camera, telemetry, webhook and hub-time jobs: each one takes the registry name
of the hub context it runs for, coalesces missed runs and never overlaps itself."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from thanthien import __version__
from thanthien.hub.jobs import contexts
from thanthien.hub.services import alarms, cameras, health, webhook
from thanthien.protocol.payloads import HubState

log = logging.getLogger(__name__)

HUB_TIME_PER_HEARTBEAT = 2
"""The hub's time beacon goes out this many times per ``health.heartbeat_s``."""


def publish_hub_time(context: str) -> bool:
    """The hub's time beacon: its ``online`` presence again with ``at`` = now, *not* retained and
    at QoS 0 (the retained copy keeps its connect time; a node compares ``at`` with its clock and
    trusts it within its tolerance, edge/clock.py). Sent only while this process's MQTT link is
    up (the one with the hub's Last Will); False when nothing was sent."""
    ctx = contexts.context(context)
    if ctx is None or ctx.mqtt is None or not ctx.mqtt.connected.is_set():
        return False
    beacon = HubState(state="online", at=ctx.clock(), version=__version__)
    ctx.mqtt.publish(ctx.topics.hub_state(), beacon.to_bytes(), qos=0, retain=False)
    return True


def check_heartbeats(context: str) -> list[str]:
    ctx = contexts.context(context)
    if ctx is None:
        return []
    h = ctx.settings.health
    now, heard = ctx.clock(), ctx.heard_until()
    with ctx.db.session() as session:
        return health.expire_heartbeats(session, now=now, heard_until=heard, heartbeat_s=h.heartbeat_s,
                                        factor=h.expiry_heartbeats, notify=ctx.notify)


def check_alarms(context: str) -> int:
    """Reminders, and the spike rule re-evaluated as its window slides past old presses."""
    ctx = contexts.context(context)
    if ctx is None:
        return 0
    now = ctx.clock()
    with ctx.db.session() as session:
        for counter in alarms.spike_subjects(session):
            alarms.evaluate_spike(session, counter=counter, now=now, rule=ctx.spike_rule, notify=ctx.notify)
        return len(alarms.send_reminders(session, now=now, remind_s=ctx.settings.alarms.remind_s,
                                         notify=ctx.notify))


def check_cameras(context: str) -> int:
    """Camera alarms for cameras that stay down, frozen or black without new reports."""
    ctx = contexts.context(context)
    if ctx is None:
        return 0
    with ctx.db.session() as session:
        return cameras.check_alarms(session, now=ctx.clock(), tz=ZoneInfo(ctx.settings.hub.timezone),
                                    alarm_after_s=ctx.settings.cameras.alarm_after_s, notify=ctx.notify)


def maintain_telemetry(context: str) -> tuple[int, int]:
    """Hourly roll-ups first, then the raw samples past retention are deleted."""
    ctx = contexts.context(context)
    if ctx is None:
        return (0, 0)
    now = ctx.clock()
    with ctx.db.session() as session:
        rolled = health.rollup_telemetry(session, now=now)
    with ctx.db.session() as session:
        pruned = health.prune_telemetry(session, now=now,
                                        retention_days=ctx.settings.health.telemetry_retention_days)
    if pruned:
        log.info("telemetry: %d hourly roll-ups written, %d old samples deleted", rolled, pruned)
    return rolled, pruned


def deliver_webhooks(context: str) -> tuple[int, int]:
    ctx = contexts.context(context)
    if ctx is None:
        return (0, 0)
    cfg = ctx.settings.alarms
    if cfg.webhook_url is None:
        return 0, 0
    with ctx.db.session() as session:
        return webhook.deliver_pending(session, url=str(cfg.webhook_url), now=ctx.clock(),
                                       attempts=cfg.webhook_attempts, backoff_s=cfg.webhook_backoff_s,
                                       timeout_s=cfg.webhook_timeout_s, site=ctx.settings.hub.site_name)
