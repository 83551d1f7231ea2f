"""One pydantic model per MQTT payload.

Every model forbids unknown fields, bounds its numbers and accepts only timezone-aware
timestamps, which it normalises to UTC. Payloads travel as UTF-8 JSON.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from thanthien.protocol.ids import CounterId, DeviceId, NodeId

MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest payload any side accepts; the broker config sets the same limit."""

MAX_ACK_IDS = 500
MAX_PLAN_ITEMS = 500


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timestamp that must carry a UTC offset; stored and sent as UTC."""

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Priority = Literal["normal", "priority", "emergency"]
"""Bulletin levels of Thông tư 39/2020/TT-BTTTT: normal, priority (plays first), emergency
(plays at once, interrupting)."""

ScalarArg = str | int | float | bool | None

EventKind = Literal["rating", "playback"]
"""A node event kind: the topic kinds marked ``acked`` in :data:`thanthien.protocol.topics.SPECS`
(``topics.EVENT_KINDS``, which rules; a test checks that this spelling agrees)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Payload(BaseModel):
    """Base of every payload: strict, immutable, JSON on the wire."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4096)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()


class HubState(Payload):
    """Retained hub presence; edges wait for ``online`` before trusting acks and plans."""

    state: Literal["online", "offline"]
    at: UtcDatetime
    version: str = Field(max_length=32)


class NodeState(Payload):
    """Retained node presence. The Last Will carries ``lost`` with the same session."""

    node: NodeId
    state: Literal["online", "offline", "lost"]
    session: int = Field(ge=0, description="Increases on every agent start (like Sparkplug bdSeq).")
    at: UtcDatetime = Field(description="When the agent built this state (for a Will: at connect).")
    agent_version: str = Field(max_length=32)
    capabilities: list[Literal["rating_box", "speaker", "camera"]] = Field(
        default_factory=list, max_length=3
    )


class Telemetry(Payload):
    """Periodic node vitals; ``None`` where the board or system cannot tell."""

    node: NodeId
    session: int = Field(ge=0)
    at: UtcDatetime
    uptime_s: float = Field(ge=0)
    agent_version: str = Field(max_length=32)
    cpu_temp_c: float | None = Field(default=None, ge=-40, le=150)
    load_1m: float = Field(ge=0)
    load_5m: float = Field(ge=0)
    load_15m: float = Field(ge=0)
    mem_used_pct: float = Field(ge=0, le=100)
    disk_used_pct: float = Field(ge=0, le=100)
    disk_free_mb: float = Field(ge=0)
    outbox_depth: int = Field(ge=0, description="Ratings stored but not yet acked by the hub.")
    ignored_presses: int = Field(ge=0, description="Repeat presses ignored since the agent started.")
    clock_synced: bool | None = Field(
        default=None,
        description="NTP says the clock is synchronised (timesyncd, chrony); `null`: cannot tell.")
    clock_offset_ms: float | None = Field(
        default=None,
        description="NTP's reference time minus the node's clock (positive: the node is behind).")
    clock_trusted: bool | None = Field(
        default=None,
        description="The node plays scheduled broadcasts: its clock is NTP-synchronised or within its "
                    "tolerance of the hub's time. `false`: scheduled broadcasts wait (play-now still plays).")
    hub_offset_ms: float | None = Field(
        default=None,
        description="The hub's time (its beacon on `hub/state`) minus the node's clock, transit included "
                    "(positive: the node is behind); `null` until the node has heard the hub.")
    held_broadcasts: int | None = Field(
        default=None, ge=0,
        description="Scheduled broadcasts due that the node holds because its clock is not trusted "
                    "(speaker nodes; `null` elsewhere).")


class RatingEvent(Payload):
    """A citizen's press, stored in the edge outbox before feedback and sent until acked."""

    event_id: UUID
    node: NodeId
    seq: int = Field(ge=1, description="Per-node sequence number, +1 per stored rating.")
    box: DeviceId
    counter: CounterId
    score: int = Field(ge=1, le=4, description="4 Rất hài lòng, 3 Hài lòng, 2 Bình thường, 1 Không hài lòng.")
    pressed_at: UtcDatetime = Field(
        description="When the press was confirmed; pressed on an untrusted clock, the node corrects it "
                    "(from its monotonic clock and the hub's time) before sending.")
    clock_uncertain: bool = Field(
        default=False,
        description="`pressed_at` comes from a clock that was not trusted and could not be corrected "
                    "(the node restarted before it learnt the right time).")


MAX_LEVELS = 900
"""Most level values in one report: a longer playback reports each value over several seconds."""

Dbfs = Annotated[float, Field(ge=-120, le=0)]


class PlayLevels(Payload):
    """Proof of play: the level of what the speaker sent to the amplifier and, where a
    microphone or a line-in loopback is fitted, of what it heard, over the same seconds."""

    step_s: int = Field(1, ge=1, le=3600, description="Seconds each value covers (more than 1 only when "
                                                      f"the playback lasted over {MAX_LEVELS} s).")
    sent_dbfs: list[Dbfs] = Field(max_length=MAX_LEVELS,
                                  description="RMS level of the output, dBFS, per `step_s` seconds.")
    heard_dbfs: list[Dbfs] | None = Field(
        None, max_length=MAX_LEVELS,
        description="RMS level at the microphone/loopback over the same seconds; `null`: none fitted.")


SourceKind = Literal["file", "stream", "fallback", "silence", "live"]


class SourceSpan(Payload):
    """One stretch of what really went out: the item's file, the relayed stream, the fallback
    file or silence after the stream failed, a live voice."""

    source: SourceKind
    seconds: float = Field(ge=0, le=24 * 3600)
    reason: str = Field(default="", max_length=200,
                        description="Why this stretch began (a fallback's cause).")


class PlaybackEvent(Payload):
    """What a speaker node did with one plan occurrence or play-now command."""

    event_id: UUID
    node: NodeId
    occurrence_id: str = Field(min_length=1, max_length=64)
    status: Literal["started", "finished", "failed", "missed", "interrupted"]
    at: UtcDatetime
    scheduled_at: UtcDatetime | None = None
    media_sha256: Sha256 | None = Field(None, description="The item's file; `null` for a live announcement.")
    detail: str = Field(default="", max_length=500)
    clock_uncertain: bool = Field(
        default=False, description="`at` comes from a clock that was not trusted and could not be corrected.")
    levels: PlayLevels | None = Field(
        None, description="With `finished`/`interrupted`: the levels sent and heard (proof of play).")
    sources: list[SourceSpan] | None = Field(
        None, max_length=20, description="With `finished`/`interrupted` of a relayed stream or a live "
                                         "announcement: what went out, in order.")


class CameraHealth(Payload):
    """Retained health of one camera as its node's probes see it."""

    node: NodeId
    camera: DeviceId
    state: Literal["ok", "degraded", "down", "frozen", "black"]
    reason: str = Field(max_length=500, description="Human-readable, e.g. 'RTSP DESCRIBE answered 401'.")
    since: UtcDatetime = Field(description="When the camera entered this state.")
    at: UtcDatetime
    connect_ms: float | None = Field(default=None, ge=0)
    brightness: float | None = Field(default=None, ge=0, le=255)
    contrast: float | None = Field(default=None, ge=0)


class Ack(Payload):
    """Hub -> node: these event ids are committed; the node may drop them from its outbox."""

    kind: EventKind = Field(description="The event topic kind the ids were committed from.")
    event_ids: list[UUID] = Field(min_length=1, max_length=MAX_ACK_IDS)
    at: UtcDatetime


class StreamSource(Payload):
    """A relay: the item plays an Icecast/HTTP audio stream (the district or province station)
    for its slot, watched for silence and for a dead stream."""

    url: str = Field(max_length=500, pattern=r"^https?://[^\s/]+(/\S*)?$")
    fallback: Literal["file", "silence"] = Field(
        description="What goes out once the stream fails: the item's file (`media_sha256`) or silence.")
    silence_s: float = Field(10.0, ge=1, le=600,
                             description="This long below `silence_dbfs` counts as failed.")
    silence_dbfs: float = Field(-50.0, ge=-120, le=0)
    stall_s: float = Field(5.0, ge=0.5, le=60, description="No audio for this long: the stream is dead.")


class PlanItem(Payload):
    occurrence_id: str = Field(min_length=1, max_length=64)
    broadcast_id: int = Field(ge=1)
    title: str = Field(max_length=200)
    start_at: UtcDatetime
    media_sha256: Sha256
    media_url: str = Field(max_length=500)
    duration_s: float = Field(gt=0, le=4 * 3600)
    priority: Priority
    volume: int = Field(ge=0, le=100)
    stream: StreamSource | None = Field(
        None, description="A relayed stream, played for `duration_s` (the slot) instead of the file.")


class Plan(Payload):
    """Hub -> node, retained: every occurrence the node must play in the coming days."""

    node: NodeId
    revision: int = Field(ge=1)
    generated_at: UtcDatetime
    valid_until: UtcDatetime
    items: list[PlanItem] = Field(max_length=MAX_PLAN_ITEMS)


class Command(Payload):
    """Hub -> node. The name is the last topic level; MQTT v5 correlation data and response
    topic say where the :class:`CommandResult` goes."""

    args: dict[str, ScalarArg] = Field(default_factory=dict, max_length=32)
    issued_at: UtcDatetime
    expires_at: UtcDatetime | None = None


class CommandResult(Payload):
    node: NodeId
    name: str = Field(max_length=64)
    ok: bool
    at: UtcDatetime
    result: dict[str, ScalarArg] = Field(default_factory=dict, max_length=64)
    error: str | None = Field(default=None, max_length=500)


class NodeConfig(Payload):
    """Hub -> node, retained: the configuration the hub holds for the node (its devices, camera
    probes, speaker volume and warm-up, telemetry, ...), replaced as a whole.

    ``settings`` holds the sections of the edge config the hub owns, shaped as in the edge TOML
    (``rating_boxes``, ``cameras``, ``speakers``, ``telemetry``, ``outbox``, ``clock``,
    ``logging``); the node validates them with the same models as its local file, together with
    its bootstrap settings (node id, broker identity, hub URL, data directory), which stay local."""

    node: NodeId
    version: int = Field(ge=1, description="Grows with every change the hub makes.")
    issued_at: UtcDatetime
    settings: dict[str, Any] = Field(
        default_factory=dict, max_length=16,
        description="Edge config sections; camera passwords travel here (only this node may read "
                    "the topic) and are never logged.")


class ConfigStatus(Payload):
    """Node -> hub, retained: the configuration version the node runs, or why it refused one."""

    node: NodeId
    session: int = Field(ge=0)
    at: UtcDatetime
    version: int = Field(ge=0, description="The hub config version in force; 0: only the local file.")
    refused_version: int | None = Field(
        default=None, ge=1, description="The last version received that the node could not apply.")
    error: str | None = Field(default=None, max_length=1000, description="Why it was refused.")
    restart_required: list[str] = Field(
        default_factory=list, max_length=8,
        description="Sections of the version in force that take effect at the next start.")


MAX_LIVE_PCM_BYTES = 16 * 1024
"""Largest piece of live audio in one frame (before base64): half a second at 16 kHz."""


def _pcm(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None
    if len(raw) > MAX_LIVE_PCM_BYTES or len(raw) % 2:
        raise ValueError(f"PCM of {len(raw)} bytes: at most {MAX_LIVE_PCM_BYTES}, whole 16-bit samples")
    return value


class LiveFrame(Payload):
    """Hub -> node, QoS 0: one piece of a live announcement as it is spoken. ``start`` opens
    it (it interrupts lower priorities like a play-now), ``audio`` carries the voice (16-bit mono
    PCM), ``end`` closes it. A node that hears nothing of an open announcement for
    ``timeout_s`` stops it and reports it interrupted."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=24_000)

    occurrence_id: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0, description="0 for `start`, +1 per frame.")
    kind: Literal["start", "audio", "end"]
    sent_at: UtcDatetime = Field(description="The hub's time when it sent the frame.")
    broadcast_id: int | None = Field(None, ge=1, description="`start`: the broadcast log entry.")
    title: str = Field("", max_length=200)
    priority: Priority = "normal"
    volume: int = Field(100, ge=0, le=100)
    timeout_s: float = Field(1.0, ge=0.2, le=10)
    sample_rate: int = Field(16000, ge=8000, le=48000)
    pcm_b64: Annotated[str, AfterValidator(_pcm)] = Field(
        "", description="`audio`: base64 of 16-bit little-endian mono PCM at `sample_rate`.")


MAX_THUMBNAIL_BYTES = 48 * 1024
"""Largest JPEG a camera thumbnail may carry (before base64); the payload stays under the cap."""


def _jpeg(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None
    if len(raw) > MAX_THUMBNAIL_BYTES:
        raise ValueError(f"JPEG of {len(raw)} bytes exceeds {MAX_THUMBNAIL_BYTES}")
    if not raw.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    return value


class CameraThumbnail(Payload):
    """Node -> hub: the small picture the camera probe last looked at, sent with a change of
    the camera's health (so IT see a black or frozen picture before driving out)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=70_000)

    node: NodeId
    camera: DeviceId
    state: Literal["ok", "degraded", "down", "frozen", "black"]
    at: UtcDatetime = Field(description="When the picture was taken.")
    jpeg_b64: Annotated[str, AfterValidator(_jpeg)] = Field(
        description="Base64 of a small greyscale JPEG (at most 48 KiB).")


ReleaseVersion = Annotated[str, Field(pattern=r"^[0-9][0-9A-Za-z.+!-]{0,40}$")]
ReleaseState = Literal["offered", "downloading", "verified", "installed", "running", "kept", "rolled_back",
                       "failed"]
"""A node's way through one release: offered (the hub asked), downloading, verified (signature and
every digest), installed (its own venv beside the one in force), running (switched, inside its
health window), then kept, or rolled back (the node switched back by itself: ``reason``), or
failed (nothing was switched: ``reason``)."""


class ReleaseOffer(Payload):
    """Hub -> node, retained: the agent release the node should run. Cleared (empty payload) when
    the roll-out is cancelled or stopped before the node switched."""

    node: NodeId
    version: ReleaseVersion
    rollout: int = Field(ge=1, description="The roll-out this offer belongs to.")
    url: str = Field(max_length=500, pattern=r"^https?://\S+$",
                     description="Where the bundle is downloaded with the node's media token.")
    sha256: Sha256 = Field(description="Digest of the bundle file as the hub stores it.")
    size: int = Field(ge=1, le=1 << 31)
    issued_at: UtcDatetime


class ReleaseStatus(Payload):
    """Node -> hub, retained: where the node is with a release, on every step and every connect."""

    node: NodeId
    session: int = Field(ge=0)
    at: UtcDatetime
    running_version: str = Field(max_length=41, description="The agent version this process runs.")
    version: ReleaseVersion | None = Field(None, description="The release the state is about.")
    rollout: int | None = Field(None, ge=1)
    state: ReleaseState | None = Field(None, description="None: nothing offered yet.")
    reason: str | None = Field(None, max_length=500, description="Why it rolled back or failed, or what "
                                                                 "it waits for (a broadcast).")
    waiting_until: UtcDatetime | None = Field(None, description="Installed, the switch delayed until then.")


ALL_PAYLOADS: tuple[type[Payload], ...] = (
    HubState,
    NodeState,
    Telemetry,
    RatingEvent,
    PlaybackEvent,
    CameraHealth,
    Ack,
    Plan,
    PlanItem,
    Command,
    CommandResult,
    NodeConfig,
    ConfigStatus,
    CameraThumbnail,
    LiveFrame,
    ReleaseOffer,
    ReleaseStatus,
)

P = TypeVar("P", bound=Payload)


class PayloadError(ValueError):
    """A payload that cannot be accepted; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(model: type[P], raw: bytes | str) -> P:
    """Parse and validate one payload, raising :class:`PayloadError` with a readable reason."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise PayloadError(_describe(model, exc)) from None


def _describe(model: type[Payload], exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(payload)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    suffix = f" (+{more} more)" if more > 0 else ""
    return f"invalid {model.__name__}: " + "; ".join(parts) + suffix


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every payload, keyed by model name."""
    return {m.__name__: m.model_json_schema() for m in ALL_PAYLOADS}
