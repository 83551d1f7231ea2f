"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from thanthien.hub.db.models import AuditEntry, Occurrence
from thanthien.hub.roles import Role
from thanthien.hub.services import audit, deliveries, roster, users
from thanthien.hub.services.broadcasts import REASON_MAX, BroadcastView
from thanthien.hub.services.tts import DEFAULT_WPM, MAX_WPM, MIN_WPM
from thanthien.protocol.ids import CounterId, DeviceId, NodeId

Code = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Token(Out):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


class UserOut(Out):
    id: int
    username: str
    full_name: str
    role: Role
    active: bool
    commune_id: int | None = Field(None, description="The commune the user belongs to; None: the province.")


# The limits come from the users service, which checks them for every caller; here they
# only make the OpenAPI document say what the service will accept.
class UserCreate(Body):
    username: str = Field(max_length=users.MAX_USERNAME, pattern=users.USERNAME_PATTERN)
    password: str = Field(min_length=users.MIN_PASSWORD, max_length=users.MAX_PASSWORD)
    role: Role
    full_name: str = Field("", max_length=users.MAX_FULL_NAME)
    commune: str | None = Field(None, max_length=63, description="The commune's code; without one a commune "
                                "admin's user is of their commune, a province admin's a province user.")


class UserUpdate(Body):
    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(None, min_length=users.MIN_PASSWORD, max_length=users.MAX_PASSWORD)
    full_name: str | None = Field(None, max_length=users.MAX_FULL_NAME)


class PasswordReset(Out):
    user: UserOut
    password: str = Field(description="The new password, shown once; the user's sessions have ended.")


class CommuneIn(Body):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)


class CommuneUpdate(Body):
    name: str = Field(min_length=1, max_length=200)


class CommuneOut(Out):
    id: int
    code: str
    name: str
    retired_at: datetime | None = None


class SiteIn(Body):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    commune: str | None = Field(None, max_length=63, description="The commune's code (a province user's "
                                "choice; a commune user's rows are their commune's).")


class SiteOut(Out):
    id: int
    code: str
    name: str
    commune_id: int | None = Field(None, description="The commune it belongs to (None: not yet placed).")


class ZoneIn(Body):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["hamlet", "residential_group"] = "hamlet"
    site: str | None = None
    commune: str | None = Field(None, max_length=63, description="The commune's code (a province user's "
                                "choice; a commune user's rows are their commune's).")


class ZoneOut(Out):
    id: int
    code: str
    name: str
    kind: str
    site_id: int | None
    commune_id: int | None = Field(None, description="The commune it belongs to (None: not yet placed).")
    retired_at: datetime | None = Field(None, description="Retired: kept with its history, not offered for "
                                                          "new things.")


class CounterIn(Body):
    code: CounterId
    name: str = Field(min_length=1, max_length=200)
    site: str | None = None
    commune: str | None = Field(None, max_length=63, description="The commune's code (a province user's "
                                "choice; a commune user's rows are their commune's).")


class CounterOut(Out):
    id: int
    code: str
    name: str
    site_id: int | None
    commune_id: int | None = Field(None, description="The commune it belongs to (None: not yet placed).")
    retired_at: datetime | None = None


class NodeIn(Body):
    id: NodeId
    name: str = Field("", max_length=200)
    site: str | None = None
    commune: str | None = Field(None, max_length=63, description="The commune's code (a province user's "
                                "choice; a commune user's rows are their commune's).")


class NodeUpdate(Body):
    name: str | None = Field(None, max_length=200)
    site: str | None = None
    registered: bool | None = None


class NodeOut(Out):
    id: str
    name: str
    site_id: int | None
    commune_id: int | None = Field(None, description="The commune it belongs to (None: not yet placed).")
    registered: bool
    state: str
    state_reason: str
    session: int
    state_at: datetime | None
    last_seen_at: datetime | None
    first_seen_at: datetime | None
    agent_version: str
    last_seq: int
    capabilities: list[str]


class DeviceIn(Body):
    node_id: NodeId
    code: DeviceId
    kind: Literal["rating_box", "speaker", "camera"]
    name: str = Field("", max_length=200)
    counter: CounterId | None = None
    zone: str | None = None
    rtsp_url: str | None = Field(None, max_length=1000, description="A camera's rtsp:// address; \"\" clears "
                                 "it, left out keeps it. An account written in it moves to the account.")
    snapshot_url: str | None = Field(None, max_length=1000, description="A camera's http:// JPEG snapshot.")
    camera_username: str | None = Field(None, max_length=128, description="Sets or replaces the camera's "
                                        "account (never shown back); left out keeps it.")
    camera_password: SecretStr | None = Field(None, description="With a username, or alone to replace only "
                                              "the password.")
    clear_credentials: bool = False


class DeviceOut(Out):
    id: int
    node_id: str
    code: str
    kind: str
    name: str
    counter_id: int | None
    zone_id: int | None
    retired_at: datetime | None = None
    rtsp_url: str | None = None
    snapshot_url: str | None = None
    has_credentials: bool = Field(False, description="Whether a camera account is set (it is never shown).")

    @classmethod
    def of(cls, device: Any) -> DeviceOut:
        out = cls.model_validate(device)
        out.has_credentials = device.camera_username is not None
        return out


class OfficerIn(Body):
    code: str = Code
    full_name: str = Field(min_length=1, max_length=200)
    title: str = Field("", max_length=200)
    user_id: int | None = Field(None, ge=1, le=2**63 - 1)
    commune: str | None = Field(None, max_length=63, description="The commune's code (a province user's "
                                "choice; a commune user's rows are their commune's).")


class OfficerOut(Out):
    id: int
    code: str
    full_name: str
    title: str
    user_id: int | None
    retired_at: datetime | None = None
    commune_id: int | None = Field(None, description="The commune it belongs to (None: not yet placed).")


class ShiftIn(Body):
    officer_id: int = Field(ge=1, le=2**63 - 1)
    counter: CounterId
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class ShiftOut(Out):
    id: int
    officer_id: int
    counter_id: int
    starts_at: datetime
    ends_at: datetime


class TelemetryOut(Out):
    node_id: str
    session: int
    at: datetime
    received_at: datetime
    uptime_s: float
    agent_version: str
    cpu_temp_c: float | None
    load_1m: float
    mem_used_pct: float
    disk_used_pct: float
    disk_free_mb: float
    outbox_depth: int
    ignored_presses: int
    clock_synced: bool | None
    clock_offset_ms: float | None


class TelemetryHourlyOut(Out):
    node_id: str
    hour: datetime
    samples: int
    cpu_temp_avg: float | None
    cpu_temp_max: float | None
    load_1m_avg: float
    mem_used_pct_max: float
    disk_used_pct_max: float
    outbox_depth_max: int


class AlarmOut(Out):
    id: int
    kind: str
    subject: str
    severity: str
    audience: str
    message: str
    details: dict[str, Any]
    raised_at: datetime
    notified_at: datetime
    reminders: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None


class RatingOut(Out):
    id: int
    node_id: str
    event_id: UUID
    seq: int
    box: str
    counter_code: str
    score: int
    pressed_at: datetime
    received_at: datetime
    officer_id: int | None
    clock_uncertain: bool | None = Field(
        None, description="True when the node could not correct a press made while its clock was wrong.")


class RatingPage(Out):
    items: list[RatingOut]
    total: int
    page: int
    page_size: int


class SummaryRowOut(Out):
    key: dict[str, Any]
    counts: dict[str, int] = Field(description="Presses per level: '4' Rất hài lòng .. '1' Không hài lòng.")
    total: int
    satisfaction_index: float | None = Field(
        description="100 × Σ(score − 1) / (3 × n): 100 when every press is Rất hài lòng, 0 when every "
                    "press is Không hài lòng.")


class Summary(Out):
    group_by: list[str]
    start: datetime | None
    end: datetime | None
    timezone: str
    rows: list[SummaryRowOut]
    total: int
    satisfaction_index: float | None


class DeadLetterOut(Out):
    id: int
    received_at: datetime
    topic: str
    kind: str
    node_id: str | None
    reason: str
    size: int


# -- cameras -------------------------------------------------------------------------------
class CameraOut(Out):
    node_id: str
    camera: str
    state: str = Field(description="ok, degraded, down, frozen, black, or unknown while the camera's node is "
                                   "offline or lost (until the node reports the camera again).")
    state_label: str = Field(description="The state in Vietnamese, for people.")
    reason: str
    since: datetime
    reported_at: datetime
    connect_ms: float | None
    brightness: float | None


class CameraPeriodOut(Out):
    state: str
    reason: str
    started_at: datetime
    ended_at: datetime | None


class CameraUptimeOut(Out):
    node_id: str
    camera: str
    period: str = Field(description="First local day of the day or month (YYYY-MM-DD).")
    uptime_pct: float | None = Field(description="Time ok or degraded over observed time, 0–100.")
    seconds: dict[str, float] = Field(description="Seconds observed in each state.")
    unknown_s: float = Field(description="Seconds no report covers (before the first, while the node was "
                                         "offline or lost, or ahead); left out of the ratio.")


# -- broadcasts ------------------------------------------------------------------------------
BroadcastOut = BroadcastView
"""A broadcast as the API answers it (the service's one public shape)."""


class QuietExceptionIn(Body):
    """A leader's leave for one broadcast to play inside quiet hours (the service checks the
    reason: not blank, at most ``REASON_MAX`` characters)."""

    reason: str = Field(max_length=4 * REASON_MAX, description="Why it must play in quiet hours, e.g. "
                        "\"Lời chúc của Chủ tịch đúng thời khắc giao thừa\".")


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    username: str
    action: str
    details: dict[str, Any]


class DeliveryOut(BaseModel):
    node_id: str
    status: str
    status_label: str
    started_at: datetime | None
    ended_at: datetime | None
    start_error_s: float | None
    detail: str
    proof: str | None = Field(None, description="Proof of play: ok, silent, unheard; null: no levels.")
    proof_detail: str = ""
    levels: dict[str, Any] | None = Field(None, description="The levels the node sent and heard (dBFS).")
    sources: list[dict[str, Any]] | None = Field(None, description="What really went out, in order.")


class ReportOut(BaseModel):
    occurrence_id: str
    broadcast_id: int
    title: str
    start_at: datetime
    start_at_local: str
    priority: str
    checked: bool
    counts: dict[str, int]
    proof_counts: dict[str, int]
    played: int
    start_spread_s: float | None
    max_start_error_s: float | None
    deliveries: list[DeliveryOut]

    @classmethod
    def of(cls, r: deliveries.DeliveryReport, tz: ZoneInfo) -> ReportOut:
        o = r.occurrence
        return cls(
            occurrence_id=o.id,
            broadcast_id=o.broadcast_id,
            title=o.title,
            start_at=o.start_at,
            start_at_local=o.start_at.astimezone(tz).isoformat(),
            priority=o.priority,
            checked=o.checked_at is not None,
            counts=r.counts,
            proof_counts=r.proof_counts,
            played=sum(r.counts.get(s, 0) for s in ("finished", "interrupted", "started")),
            start_spread_s=r.start_spread_s,
            max_start_error_s=r.max_start_error_s,
            deliveries=[
                DeliveryOut(
                    node_id=d.node_id,
                    status=d.status,
                    status_label=deliveries.STATUS_LABELS.get(d.status, d.status),
                    started_at=d.started_at,
                    ended_at=d.ended_at,
                    detail=d.detail,
                    start_error_s=(d.started_at - o.start_at).total_seconds() if d.started_at else None,
                    proof=d.proof,
                    proof_detail=d.proof_detail or "",
                    levels=d.levels,
                    sources=d.sources,
                )
                for d in r.deliveries
            ],
        )


class OccurrenceOut(BaseModel):
    occurrence_id: str
    broadcast_id: int
    title: str
    start_at: datetime
    start_at_local: str
    duration_s: float
    priority: str
    targets: int
    command: bool

    @classmethod
    def of(cls, o: Occurrence, targets: int, tz: ZoneInfo) -> OccurrenceOut:
        return cls(occurrence_id=o.id, broadcast_id=o.broadcast_id, title=o.title, start_at=o.start_at,
                   start_at_local=o.start_at.astimezone(tz).isoformat(), duration_s=o.duration_s,
                   priority=o.priority, targets=targets, command=o.command)


class PlayNowOut(BaseModel):
    broadcast_id: int
    occurrence_id: str
    start_at: datetime
    targets: list[str]


class HolidayOut(BaseModel):
    key: str
    name: str
    next_dates: list[str]


# -- media ----------------------------------------------------------------------------------
class MediaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sha256: str
    title: str
    duration_s: float
    size_bytes: int
    source_format: str
    tts_text: str | None
    tts_voice: str | None
    tts_spoken: str | None = Field(None, description="What the engine read: the text after the dictionary "
                                                     "and the normaliser.")
    tts_engine: str | None = None
    created_at: datetime
    created_by: str


class TtsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=50_000)
    voice: str = Field("northern", max_length=80,
                       description="northern, central, southern (espeak-ng) or piper:<installed voice>.")
    speed_wpm: int = Field(DEFAULT_WPM, ge=MIN_WPM, le=MAX_WPM)
    chime: bool = True
    title: str = Field("", max_length=200)


class NodeTokenOut(BaseModel):
    node_id: str
    token: str = Field(description="Shown once; put it in the node's [speakers] token.")


# -- the administrative audit log ----------------------------------------------------------
class AdminAuditOut(BaseModel):
    id: int
    at: datetime
    actor_id: int | None = Field(description="The user's id; null for the hub itself (seeding, config, CLI).")
    actor_username: str
    actor_role: str
    action: str = Field(description="What was done, e.g. user.role, node.register, node_token.issue.")
    action_label: str = Field(description="The action in Vietnamese, as the page and the export show it.")
    subject: str = Field(description="What it was done to, e.g. user:canbo, node:loa-ban-hon.")
    details: dict[str, Any] = Field(description="Values, or {field: {from, to}} for a change; "
                                                "never a secret.")

    @classmethod
    def of(cls, entry: AuditEntry) -> AdminAuditOut:
        return cls(id=entry.id, at=entry.at, actor_id=entry.actor_id, actor_username=entry.actor_username,
                   actor_role=entry.actor_role, action=entry.action,
                   action_label=audit.action_label(entry.action), subject=entry.subject,
                   details=entry.details)


class AdminAuditPage(BaseModel):
    total: int = Field(description="Entries the filter selects (the page holds at most `limit`).")
    entries: list[AdminAuditOut]


# -- registry edits and the weekly duty roster (issue 15) ------------------------------------
Hhmm = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$", description="Local time HH:MM (24:00: midnight).")


class ZoneUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    kind: Literal["hamlet", "residential_group"] | None = None


class CounterUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=200)


class OfficerUpdate(Body):
    full_name: str | None = Field(None, min_length=1, max_length=200)
    title: str | None = Field(None, max_length=200)
    user_id: int | None = Field(None, ge=1, le=2**63 - 1, description="The linked login; null unlinks it, "
                                "left out keeps it.")


class PatternIn(Body):
    counter: CounterId
    officer_id: int = Field(ge=1, le=2**63 - 1)
    weekdays: list[int] = Field(min_length=1, max_length=7, description="1 = Monday … 7 = Sunday.")
    starts: str = Hhmm
    ends: str = Hhmm
    valid_from: date | None = Field(None, description="Local date; today when left out.")
    valid_until: date | None = Field(None, description="Local date, inclusive; open-ended when left out.")


class PatternEnd(Body):
    last_day: date = Field(description="The last local day the row applies; a day before it began "
                                       "removes it, with every rating it named.")


class PatternOut(Out):
    id: int
    counter_id: int
    officer_id: int
    weekdays: list[int]
    starts: str
    ends: str
    timezone: str
    valid_from: date
    valid_until: date | None

    @classmethod
    def of(cls, row: Any) -> PatternOut:
        return cls(id=row.id, counter_id=row.counter_id, officer_id=row.officer_id,
                   weekdays=list(row.weekdays), starts=roster.hhmm(row.starts_min),
                   ends=roster.hhmm(row.ends_min), timezone=row.timezone,
                   valid_from=row.valid_from, valid_until=row.valid_until)


class ExceptionIn(Body):
    kind: Literal["leave", "swap", "extra"] = Field(description="leave: away from every counter; swap: "
                                                    "stands in at the counter; extra: a one-off day there.")
    officer_id: int = Field(ge=1, le=2**63 - 1)
    counter: CounterId | None = Field(None, description="Required for swap and extra; ignored for leave.")
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    note: str = Field("", max_length=200)


class ExceptionOut(Out):
    id: int
    kind: str
    officer_id: int
    counter_id: int | None
    starts_at: datetime
    ends_at: datetime
    note: str


class RosterMove(BaseModel):
    from_officer_id: int | None
    to_officer_id: int | None
    ratings: int


class RosterChangeOut(BaseModel):
    dry_run: bool = Field(description="true: nothing was changed, this is what the change would do.")
    ratings_changed: int = Field(description="Stored ratings that change officer (or go to nobody).")
    moves: list[RosterMove]
    pattern: PatternOut | None = None
    exception: ExceptionOut | None = None

    @classmethod
    def of(cls, impact: Any, *, dry_run: bool, applied: Any = None) -> RosterChangeOut:
        moves = [RosterMove(from_officer_id=a, to_officer_id=b, ratings=n) for a, b, n in impact.moves()]
        out = cls(dry_run=dry_run, ratings_changed=impact.count, moves=moves)
        if applied is not None and applied.patterns:
            out.pattern = PatternOut.of(applied.patterns[0])
        if applied is not None and applied.exceptions:
            out.exception = ExceptionOut.model_validate(applied.exceptions[0])
        return out


class DutyOut(BaseModel):
    counter: str
    starts_at: datetime
    ends_at: datetime
    officer_id: int | None = Field(description="Who is on duty; null: the pattern's officer is on leave.")
    source: Literal["pattern", "swap", "extra", "leave"]
    replaces_officer_id: int | None = Field(description="For a swap or a leave: whom the weekly pattern "
                                            "names.")
