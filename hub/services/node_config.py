"""The configuration the hub holds for each node, sent to it retained and versioned.

A node comes under the hub's configuration when IT adds it for enrollment (a row in
``node_configs``); nodes configured only by their local file (declared in the hub's TOML or
through the old API) get nothing from here. The config sent (``NodeConfig.settings``, shaped as
the edge TOML) is built from two sources:

* the registry: the node's rating boxes (box code, the counter it serves), its speaker and its
  cameras (their RTSP and snapshot URLs and account, stored by the registry, never shown back);
* the values the hub owns for the node (``node_configs.settings``): the speaker's volume,
  warm-up, relay pin and delays, each device's hardware (buttons, LED pin, probe limits) and
  the telemetry interval; IT change them on the node page or ``PUT /api/v1/nodes/{id}/config``.

Whenever the built config differs from the one last published (a digest), it gets the next
version and goes out retained on ``{root}/node/{node}/config`` (after the commit that changed
it, and by a periodic check for changes made elsewhere, e.g. a device added on a registry
page). The node answers on ``config/status`` with the version it runs, or the version it
refused and why (``ingest/node_reports.py`` stores it here); the node page shows both.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Counter, Device, Node, NodeConfigRow
from thanthien.hub.db.session import mark_changed
from thanthien.hub.roles import DEVICE_STAFF, Actor, require
from thanthien.hub.services import audit
from thanthien.hub.services.errors import NotFound
from thanthien.hub.tenancy import Tenant, is_province, require_reach
from thanthien.protocol.payloads import ConfigStatus, NodeConfig

log = logging.getLogger(__name__)

CONFIG_CHANGES = "node_configs"
"""``mark_changed`` topic: a node config changed; the follower publishes what differs."""
RETIRED_DIGEST = "retired"

DEFAULT_SPEAKER: dict[str, Any] = {"volume": 80, "warmup_s": 1.5, "relay_off_delay_s": 5.0}
"""What a new speaker node starts with (the edge's own defaults fill the rest)."""


class SpeakerValues(BaseModel):
    """The speaker values IT set for a node (the edge's ``[speakers]`` table, without the URL
    and token, which are the node's bootstrap)."""

    model_config = ConfigDict(extra="forbid")

    volume: int | None = Field(None, ge=0, le=100, description="Master volume in percent.")
    warmup_s: float | None = Field(None, ge=0, le=30, description="Amplifier on this long before the audio.")
    relay_off_delay_s: float | None = Field(None, ge=0, le=3600,
                                            description="Amplifier stays on this long after the audio.")
    relay_pin: int | None = Field(None, ge=0, le=27, description="BCM GPIO of the amplifier relay.")
    relay_active_high: bool | None = None


class ConfigUpdate(BaseModel):
    """A change of what the hub holds for a node; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    speaker: SpeakerValues | None = None
    telemetry_interval_s: float | None = Field(None, ge=1, le=3600)
    devices: dict[str, dict[str, Any]] | None = Field(
        None, max_length=64,
        description="Per device code, edge settings of that device (buttons, led_pin, probe limits), "
                    "replacing what was there.")


@dataclass(frozen=True)
class ConfigView:
    """A node's config as the page and the API show it (camera passwords masked)."""

    node_id: str
    version: int
    published_at: datetime | None
    settings: dict[str, Any]
    values: dict[str, Any]
    reported_version: int | None
    reported_refused: int | None
    reported_error: str
    reported_restart: list[str]
    reported_at: datetime | None

    @property
    def in_force(self) -> bool:
        """The node runs the version last published."""
        return self.version > 0 and self.reported_version == self.version


# -- rows ----------------------------------------------------------------------------------
def ensure(session: Session, *, node_id: str, now: datetime, username: str) -> NodeConfigRow:
    """The node's config row, made with the defaults when the node comes under the hub's config."""
    row = session.get(NodeConfigRow, node_id)
    if row is None:
        speaker = any(d.kind == "speaker" for d in _devices(session, node_id))
        row = NodeConfigRow(node_id=node_id, settings={"speaker": dict(DEFAULT_SPEAKER)} if speaker else {},
                            version=0, digest="", updated_at=now, updated_by=username, reported_error="",
                            reported_restart=[])
        session.add(row)
        session.flush()
        mark_changed(session, CONFIG_CHANGES)
    return row


def _row(session: Session, node_id: str) -> NodeConfigRow:
    row = session.get(NodeConfigRow, node_id)
    if row is None:
        raise NotFound(f"Thiết bị {node_id} chưa được quản lý cấu hình từ trung tâm "
                       "(hãy tạo mã đăng ký cho thiết bị).")
    return row


def update(session: Session, *, actor: Actor, node_id: str, change: ConfigUpdate,
           now: datetime) -> NodeConfigRow:
    """Change what the hub holds for a node (IT staff); audited, published after the commit."""
    require(actor, DEVICE_STAFF)
    _reach(session, actor, node_id)
    row = _row(session, node_id)
    values = json.loads(json.dumps(row.settings or {}))
    before = {"speaker": dict(values.get("speaker") or {}), "telemetry": dict(values.get("telemetry") or {})}
    if change.speaker is not None:
        speaker = dict(values.get("speaker") or {})
        speaker.update(change.speaker.model_dump(exclude_none=True))
        values["speaker"] = speaker
    if change.telemetry_interval_s is not None:
        values["telemetry"] = {"interval_s": change.telemetry_interval_s}
    if change.devices is not None:
        values["devices"] = {**(values.get("devices") or {}), **change.devices}
    row.settings, row.updated_at, row.updated_by = values, now, actor.username
    after = {"speaker": dict(values.get("speaker") or {}), "telemetry": dict(values.get("telemetry") or {})}
    details = audit.changes(before, after)
    if change.devices is not None:
        details["devices"] = sorted(change.devices)  # codes only: a camera's account may be in there
    node = session.get(Node, node_id)
    audit.record(session, actor=actor, action="node.config", subject=f"node:{node_id}", at=now,
                 details=details, commune_id=node.commune_id if node is not None else None)
    mark_changed(session, CONFIG_CHANGES)
    return row


# -- building ------------------------------------------------------------------------------
def _devices(session: Session, node_id: str) -> list[Device]:
    rows = session.scalars(select(Device).where(Device.node_id == node_id).order_by(Device.code))
    return [d for d in rows if getattr(d, "retired_at", None) is None]


def build(session: Session, row: NodeConfigRow) -> dict[str, Any]:
    """The edge config sections the node gets: registry devices with the hub's values."""
    values = row.settings or {}
    hardware: dict[str, dict[str, Any]] = values.get("devices") or {}
    counters = {c.id: c.code for c in session.scalars(select(Counter))}
    boxes: list[dict[str, Any]] = []
    cameras: list[dict[str, Any]] = []
    speaker = False
    for device in _devices(session, row.node_id):
        extra = dict(hardware.get(device.code) or {})
        if device.kind == "rating_box" and device.counter_id in counters:
            boxes.append({**extra, "id": device.code, "counter": counters[device.counter_id]})
        elif device.kind == "camera":
            camera = _camera(device, extra)
            if camera is not None:
                cameras.append(camera)
        elif device.kind == "speaker":
            speaker = True
    out: dict[str, Any] = {"rating_boxes": boxes, "cameras": cameras,
                           "speakers": dict(values.get("speaker") or {}) if speaker else None}
    if values.get("telemetry"):
        out["telemetry"] = dict(values["telemetry"])
    return out


def _camera(device: Device, extra: dict[str, Any]) -> dict[str, Any] | None:
    """A camera probe: its addresses and account from the registry (or the hub's values)."""
    camera = {**extra, "id": device.code}
    for field, column in (("rtsp_url", "rtsp_url"), ("snapshot_url", "snapshot_url"),
                          ("username", "camera_username"), ("password", "camera_password")):
        value = getattr(device, column, None)
        if value:
            camera[field] = value
    return camera if camera.get("rtsp_url") else None  # nothing to probe without its stream


def digest(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def _masked(settings: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(settings, default=str))
    for camera in out.get("cameras") or []:
        for key in ("password", "username"):
            if camera.get(key):
                camera[key] = "***"
    for values in (out.get("devices") or {}).values():
        if isinstance(values, dict) and values.get("password"):
            values["password"] = "***"
    return out


def _reach(session: Session, viewer: Tenant, node_id: str) -> None:
    """A node of a commune ``viewer`` does not reach is not found (nor its config)."""
    node = session.get(Node, node_id)
    if node is not None:
        require_reach(viewer, node.commune_id, what=f"Thiết bị {node_id}")
    elif not is_province(viewer):
        raise NotFound(f"Không có thiết bị mã {node_id}.")


def view(session: Session, *, viewer: Tenant, node_id: str) -> ConfigView | None:
    """What the hub holds for the node and what it runs (``None``: not configured from the hub)."""
    _reach(session, viewer, node_id)
    row = session.get(NodeConfigRow, node_id)
    if row is None:
        return None
    return ConfigView(node_id=node_id, version=row.version, published_at=row.published_at,
                      settings=_masked(build(session, row)), values=_masked(row.settings or {}),
                      reported_version=row.reported_version, reported_refused=row.reported_refused,
                      reported_error=row.reported_error, reported_restart=list(row.reported_restart or []),
                      reported_at=row.reported_at)


def current(session: Session, *, node_id: str, now: datetime) -> NodeConfig | None:
    """The config the node should run now (bumping the version if it changed); ``None`` for a
    node the hub does not configure. Enrollment hands it over with the identity."""
    row = session.get(NodeConfigRow, node_id)
    if row is None:
        return None
    config = _next(session, row, now)
    row.published_at = None  # the follower publishes it retained after the commit
    mark_changed(session, CONFIG_CHANGES)
    return config


def _next(session: Session, row: NodeConfigRow, now: datetime, *, force: bool = False) -> NodeConfig:
    """The node's config as it is now; a new version when it differs from the last one (then
    not published yet: ``published_at`` is cleared)."""
    settings = build(session, row)
    new_digest = digest(settings)
    if force or new_digest != row.digest or row.version == 0:
        row.version, row.digest, row.published_at = row.version + 1, new_digest, None
    return NodeConfig(node=row.node_id, version=row.version, issued_at=now, settings=settings)


# -- publishing ----------------------------------------------------------------------------
def sync(ctx: HubContext, *, node_ids: list[str] | None = None, force: bool = False) -> list[str]:
    """Publish (retained) the config of every hub-configured node whose config changed or was
    not published yet (all of ``node_ids`` with ``force``); a retired node's retained config is
    cleared once. Returns the nodes published. Nothing without an MQTT link: the next check
    catches up."""
    link = ctx.mqtt
    if link is None:
        return []
    sent: list[tuple[str, bytes]] = []
    now = ctx.clock()
    with ctx.db.session() as session:
        query = select(NodeConfigRow, Node).join(Node, Node.id == NodeConfigRow.node_id)
        if node_ids is not None:
            query = query.where(NodeConfigRow.node_id.in_(node_ids))
        for row, node in session.execute(query).all():
            if node.retired_at is not None:
                if row.digest != RETIRED_DIGEST:
                    row.digest = RETIRED_DIGEST
                    sent.append((row.node_id, b""))
                continue
            config = _next(session, row, now, force=force)
            if row.published_at is None:
                row.published_at = now
                sent.append((row.node_id, config.to_bytes()))
    for node_id, payload in sent:
        link.publish(ctx.topics.node_config(node_id), payload, qos=1, retain=True)
    if sent:
        log.info("node config published to %d node(s): %s", len(sent), ", ".join(n for n, _ in sent[:10]))
    return [n for n, _ in sent]


def follow(ctx: HubContext) -> None:
    """Publish what changed after every commit that marked node configs changed."""
    ctx.db.follow(CONFIG_CHANGES, ("node_config", id(ctx)), lambda: sync(ctx))


# -- what nodes report ---------------------------------------------------------------------
def record_status(session: Session, *, status: ConfigStatus, now: datetime) -> bool:
    """Store the version a node says it runs (or refused); False for a node the hub does not
    configure (nothing to compare with)."""
    row = session.get(NodeConfigRow, status.node)
    if row is None:
        return False
    row.reported_version, row.reported_refused = status.version, status.refused_version
    row.reported_error = (status.error or "")[:1000]
    row.reported_restart, row.reported_at = list(status.restart_required), now
    return True
