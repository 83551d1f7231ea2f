"""The hub's tables. Every timestamp is stored in UTC (``UtcDateTime``)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer, "sqlite")
"""64-bit ids on PostgreSQL; SQLite's INTEGER PRIMARY KEY is already 64-bit (and autoincrements)."""


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; SQLite (which keeps no zone) gives it back aware too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# -- tenancy (issue 20) --------------------------------------------------------------------
class Commune(Base):
    """A commune or ward (xã / phường) the hub serves: the tenant every zone, counter, node,
    officer, dossier and broadcast belongs to (``hub/tenancy.py``). A hub installed for one town
    has one, ``home``, created by migration 0018."""

    __tablename__ = "communes"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# -- registry ------------------------------------------------------------------------------
class Site(Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # codes stay unique across the province: they name things in URLs, topics and exports
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)


class Zone(Base):
    """A hamlet (bản) or residential group (tổ dân phố) that speakers serve."""

    __tablename__ = "zones"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="hamlet")
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    # the commune the zone is in
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)
    # retired: kept with its history, no longer offered for new things (issue 15)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Counter(Base):
    """A counter (quầy) of the one-stop office."""

    __tablename__ = "counters"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    # the commune whose one-stop office has the counter
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Node(Base):
    """An edge node, declared (``registered``) or seen on MQTT without being declared."""

    __tablename__ = "nodes"
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    registered: Mapped[bool] = mapped_column(Boolean, default=True)
    # None: seen on MQTT without being declared, not yet placed (province staff only)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    state_reason: Mapped[str] = mapped_column(String(200), default="")
    session: Mapped[int] = mapped_column(BigInteger, default=0)
    state_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    agent_version: Mapped[str] = mapped_column(String(32), default="")
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    capabilities: Mapped[list[str]] = mapped_column(JSON, default=list)
    # retired: its broker identity revoked, kept with its history (issue 15)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("node_id", "code", name="uq_devices_node_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id", ondelete="SET NULL"))
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="SET NULL"))
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # a camera's addresses (without credentials) and its account: stored for the node's
    # config, never shown back, logged or audited (only whether one is set)
    rtsp_url: Mapped[str | None] = mapped_column(String(500))
    snapshot_url: Mapped[str | None] = mapped_column(String(500))
    camera_username: Mapped[str | None] = mapped_column(String(128))
    camera_password: Mapped[str | None] = mapped_column(String(256))


class Officer(Base):
    """A civil servant (cán bộ, công chức) who staffs counters."""

    __tablename__ = "officers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # the commune the officer works for
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RosterPattern(Base):
    """The weekly duty roster: an officer staffs a counter on ``weekdays`` (1 = Monday … 7)
    from ``starts_min`` to ``ends_min`` (minutes after local midnight in ``timezone``), on the
    local days ``valid_from`` … ``valid_until`` (inclusive; open-ended when ``None``)."""

    __tablename__ = "roster_patterns"
    __table_args__ = (Index("ix_roster_patterns_counter_from", "counter_id", "valid_from"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id", ondelete="CASCADE"))
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id", ondelete="CASCADE"))
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)
    starts_min: Mapped[int] = mapped_column(Integer)
    ends_min: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)


class RosterException(Base):
    """An exception to the weekly roster for [starts_at, ends_at): ``leave`` (the officer is
    away from every counter), ``swap`` (the officer staffs the counter instead of whoever the
    pattern names) or ``extra`` (a one-off day at the counter; the roster's one-off shifts
    before issue 15 became these)."""

    __tablename__ = "roster_exceptions"
    __table_args__ = (Index("ix_roster_exceptions_counter_time", "counter_id", "starts_at"),
                      Index("ix_roster_exceptions_officer_time", "officer_id", "starts_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id", ondelete="CASCADE"))
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(String(200), default="")


# -- people --------------------------------------------------------------------------------
class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # None: a province user, who reads every commune
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)


# -- ratings -------------------------------------------------------------------------------
class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("node_id", "event_id", name="uq_ratings_node_event"),
        Index("ix_ratings_pressed_at", "pressed_at"),
        Index("ix_ratings_counter_pressed", "counter_code", "pressed_at"),
        Index("ix_ratings_officer_pressed", "officer_id", "pressed_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(63))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seq: Mapped[int] = mapped_column(BigInteger)
    box: Mapped[str] = mapped_column(String(63))
    counter_code: Mapped[str] = mapped_column(String(63))
    score: Mapped[int] = mapped_column(Integer)
    pressed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    # the node could not correct pressed_at (issue 14 item 5); None: not recorded
    clock_uncertain: Mapped[bool | None] = mapped_column(Boolean)


class RatingCount(Base):
    """Presses per level (``n1`` … ``n4``) per local day, counter and officer, kept in the same
    transaction as the ratings (``services/rating_counts.py``); the reports read these. A key
    column cannot be NULL in a unique key that ``ON CONFLICT`` finds, so ``officer_id`` 0 is
    "nobody on duty". Derived data: not backed up, rebuilt from the ratings."""

    __tablename__ = "rating_counts"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012  (clustered by day on SQLite too)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    counter_code: Mapped[str] = mapped_column(String(63), primary_key=True)
    officer_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n1: Mapped[int] = mapped_column(Integer, default=0)
    n2: Mapped[int] = mapped_column(Integer, default=0)
    n3: Mapped[int] = mapped_column(Integer, default=0)
    n4: Mapped[int] = mapped_column(Integer, default=0)


class RatingMonthCount(Base):
    """``rating_counts`` summed per local month (``month`` is its first day), kept with them, so a
    summary over months reads a twelfth of the rows. Derived data as they are."""

    __tablename__ = "rating_month_counts"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    counter_code: Mapped[str] = mapped_column(String(63), primary_key=True)
    officer_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n1: Mapped[int] = mapped_column(Integer, default=0)
    n2: Mapped[int] = mapped_column(Integer, default=0)
    n3: Mapped[int] = mapped_column(Integer, default=0)
    n4: Mapped[int] = mapped_column(Integer, default=0)


class RatingCountZone(Base):
    """The time zone whose local days ``rating_counts`` are cut in (one row; none: the
    default zone, Asia/Ho_Chi_Minh)."""

    __tablename__ = "rating_count_zone"
    zone: Mapped[str] = mapped_column(String(64), primary_key=True)


class DeadLetter(Base):
    """A message the hub could not accept, with the reason (and at most 4 KiB of it)."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_received_at", "received_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    topic: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(32))
    node_id: Mapped[str | None] = mapped_column(String(63))
    reason: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


# -- health --------------------------------------------------------------------------------
class TelemetrySample(Base):
    __tablename__ = "telemetry"
    __table_args__ = (Index("ix_telemetry_node_received", "node_id", "received_at"),
                      Index("ix_telemetry_received_at", "received_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(63))
    session: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    uptime_s: Mapped[float] = mapped_column(Float)
    agent_version: Mapped[str] = mapped_column(String(32))
    cpu_temp_c: Mapped[float | None] = mapped_column(Float)
    load_1m: Mapped[float] = mapped_column(Float)
    mem_used_pct: Mapped[float] = mapped_column(Float)
    disk_used_pct: Mapped[float] = mapped_column(Float)
    disk_free_mb: Mapped[float] = mapped_column(Float)
    outbox_depth: Mapped[int] = mapped_column(Integer)
    ignored_presses: Mapped[int] = mapped_column(Integer)
    clock_synced: Mapped[bool | None] = mapped_column(Boolean)
    clock_offset_ms: Mapped[float | None] = mapped_column(Float)
    # clock trust (issue 14 item 5; None: a node too old to say)
    clock_trusted: Mapped[bool | None] = mapped_column(Boolean)
    hub_offset_ms: Mapped[float | None] = mapped_column(Float)
    held_broadcasts: Mapped[int | None] = mapped_column(Integer)


class TelemetryHourly(Base):
    """One node's telemetry folded per UTC hour; kept after the raw samples expire."""

    __tablename__ = "telemetry_hourly"
    __table_args__ = (UniqueConstraint("node_id", "hour", name="uq_telemetry_hourly_node_hour"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(63))
    hour: Mapped[datetime] = mapped_column(UtcDateTime)
    samples: Mapped[int] = mapped_column(Integer)
    cpu_temp_avg: Mapped[float | None] = mapped_column(Float)
    cpu_temp_max: Mapped[float | None] = mapped_column(Float)
    load_1m_avg: Mapped[float] = mapped_column(Float)
    mem_used_pct_max: Mapped[float] = mapped_column(Float)
    disk_used_pct_max: Mapped[float] = mapped_column(Float)
    outbox_depth_max: Mapped[int] = mapped_column(Integer)


# -- alarms --------------------------------------------------------------------------------
class Alarm(Base):
    """One occurrence of a condition: raised once, reminded, acknowledged, cleared."""

    __tablename__ = "alarms"
    __table_args__ = (
        Index("uq_alarms_active", "kind", "subject", unique=True,
              sqlite_where=text("cleared_at IS NULL"), postgresql_where=text("cleared_at IS NULL")),
        Index("ix_alarms_raised_at", "raised_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    audience: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    notified_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # the commune of the alarm's subject; None: the hub's own (province staff)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)


class AlarmNotification(Base):
    """An alarm event waiting for (or done with) delivery to the webhook: a transactional outbox."""

    __tablename__ = "alarm_notifications"
    __table_args__ = (Index("ix_alarm_notifications_pending", "delivered", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str] = mapped_column(String(500), default="")


# -- cameras (CCTV health, issue 6) --------------------------------------------------------
class CameraStatus(Base):
    """A camera's current state as its node last reported it (one row per camera)."""

    __tablename__ = "camera_status"
    __table_args__ = (UniqueConstraint("node_id", "camera", name="uq_camera_status_node_camera"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(63))
    camera: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    connect_ms: Mapped[float | None] = mapped_column(Float)
    brightness: Mapped[float | None] = mapped_column(Float)


class CameraPeriod(Base):
    """One stretch of a camera in one state, [started_at, ended_at); open while it lasts.
    Uptime per day and month is cut from these."""

    __tablename__ = "camera_periods"
    __table_args__ = (Index("ix_camera_periods_camera_started", "node_id", "camera", "started_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(63))
    camera: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# -- broadcasts (media library, schedules, plans, delivery reports; issue 5) ---------------
class MediaItem(Base):
    """A playback file of the media library (the file itself is ``<media dir>/<sha[:2]>/<sha>.wav``)."""

    __tablename__ = "media_items"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    duration_s: Mapped[float] = mapped_column(Float)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    source_format: Mapped[str] = mapped_column(String(16))
    source_sha256: Mapped[str] = mapped_column(String(64))
    tts_text: Mapped[str | None] = mapped_column(Text)
    tts_voice: Mapped[str | None] = mapped_column(String(80))
    # what the engine was given to read: the text after the pronunciation dictionary and the
    # normaliser (numbers, dates, times, phone numbers in words), and which engine read it
    tts_spoken: Mapped[str | None] = mapped_column(Text)
    tts_engine: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    # who uploaded it; None: the province's library, which every commune uses
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)


class NodeMediaToken(Base):
    """A speaker node's bearer token for media downloads; only its SHA-256 is kept."""

    __tablename__ = "node_media_tokens"
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Broadcast(Base):
    """A broadcast (bản tin) and its schedule; ``status`` is draft, approved or archived.
    Play-now commands are stored as broadcasts of ``schedule_kind`` ``now``."""

    __tablename__ = "broadcasts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    media_sha256: Mapped[str] = mapped_column(ForeignKey("media_items.sha256", ondelete="RESTRICT"))
    target_kind: Mapped[str] = mapped_column(String(16))
    target_zones: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_nodes: Mapped[list[str]] = mapped_column(JSON, default=list)
    volume: Mapped[int] = mapped_column(Integer, default=100)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    schedule_kind: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    local_time: Mapped[str | None] = mapped_column(String(5))
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)
    rrule: Mapped[str | None] = mapped_column(String(500))
    holidays: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # a quiet-hours exception a leader granted for this broadcast as it is (an edit of its
    # schedule, audio or targets drops it): who, when, why
    quiet_exception_by: Mapped[str | None] = mapped_column(String(64))
    quiet_exception_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    quiet_exception_reason: Mapped[str | None] = mapped_column(String(500))
    # a relay (hub/services/relays.py): the station's stream played for the slot, falling back
    # to the broadcast's file or to silence
    stream_url: Mapped[str | None] = mapped_column(String(500))
    stream_fallback: Mapped[str | None] = mapped_column(String(16))
    slot_s: Mapped[float | None] = mapped_column(Float)
    # a live announcement from a browser (hub/services/live.py, schedule_kind "now"): how long
    # it lasted (0 while it lasts); None for every other broadcast
    live_s: Mapped[float | None] = mapped_column(Float)
    # None: a province broadcast, on the calendar of every commune it targets
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)


class BroadcastAudit(Base):
    """Every change to a broadcast: who, when, what (the values after the change)."""

    __tablename__ = "broadcast_audit"
    __table_args__ = (Index("ix_broadcast_audit_broadcast", "broadcast_id", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    broadcast_id: Mapped[int] = mapped_column(BigId)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Occurrence(Base):
    """One time a broadcast plays (materialised for the plan horizon), with its targets in
    ``deliveries``. ``id`` is the occurrence id the nodes report."""

    __tablename__ = "broadcast_occurrences"
    __table_args__ = (UniqueConstraint("broadcast_id", "start_at", name="uq_broadcast_occurrences_start"),
                      Index("ix_broadcast_occurrences_start_at", "start_at"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    duration_s: Mapped[float] = mapped_column(Float)
    media_sha256: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    volume: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    command: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Delivery(Base):
    """What one node did with one occurrence: pending until it reports."""

    __tablename__ = "broadcast_deliveries"
    __table_args__ = (UniqueConstraint("occurrence_id", "node_id", name="uq_broadcast_deliveries_node"),
                      Index("ix_broadcast_deliveries_node", "node_id"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    occurrence_id: Mapped[str] = mapped_column(ForeignKey("broadcast_occurrences.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    detail: Mapped[str] = mapped_column(String(500), default="")
    # proof of play (hub/services/proof.py): ok, silent (sent nothing audible), unheard (the
    # loopback heard nothing); None: no levels reported
    proof: Mapped[str | None] = mapped_column(String(16))
    proof_detail: Mapped[str] = mapped_column(String(300), default="")
    levels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # what really went out (a relay's stream, its fallback; a live voice): [{source, seconds, reason}]
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class PlaybackReport(Base):
    """Every playback event once (unique per node and event id): the ingest's dedup log."""

    __tablename__ = "playback_events"
    __table_args__ = (UniqueConstraint("node_id", "event_id", name="uq_playback_events_node_event"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(63))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    occurrence_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    detail: Mapped[str] = mapped_column(String(500), default="")


class BroadcastRule(Base):
    """When and how loud the speakers may play (issue 19 item 3): the commune's rule
    (``key`` ``commune``), a zone's (``zone:<id>``) or one speaker's override
    (``speaker:<device id>``). Each part left ``None`` is inherited from the level above:
    speaker, then zone, then commune (``services/zone_rules.py``)."""

    __tablename__ = "broadcast_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    # [{"start": "05:30", "end": "06:30", "volume": 60}, ...]: the loudest allowed in each band
    volume_profile: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    daily_minutes: Mapped[int | None] = mapped_column(Integer)
    # [{"start": "05:30", "minutes": 60}, ...]: the only times a non-emergency broadcast may play
    slots: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
    # the commune a ``commune`` rule is for (zone and speaker rules follow their zone)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)


class TtsLexiconEntry(Base):
    """The pronunciation dictionary the admin edits: a written term and how it is read out."""

    __tablename__ = "tts_lexicon"
    id: Mapped[int] = mapped_column(primary_key=True)
    term: Mapped[str] = mapped_column(String(64), unique=True)
    spoken: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class MediaListen(Base):
    """A user and a library file: when the hub first served it to them and when they had
    heard it to the end (the listen-through an approver of a TTS broadcast needs)."""

    __tablename__ = "media_listens"
    __table_args__ = (UniqueConstraint("sha256", "username", name="uq_media_listens_sha_user"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime)
    listened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NodePlan(Base):
    """The plan last published to a speaker node: its revision and a digest of its items."""

    __tablename__ = "node_plans"
    node_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    items: Mapped[int] = mapped_column(Integer)
    generated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# -- logins and the administrative audit (issue 14 item 8) ---------------------------------
class LoginThrottle(Base):
    """Failed logins of one account name (``scope`` ``account``, any name typed, known or not)
    or of one client address (``address``) since they were last forgotten: the login throttle's
    state, in the database so every hub process sees the same count."""

    __tablename__ = "login_throttle"
    __table_args__ = (Index("ix_login_throttle_last_failure_at", "last_failure_at"),)
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """One administrative change: who made it (as they were then), when, what was done to
    what, and the details (never a password or token). No foreign key: the trace outlives
    the account and the thing it names."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_subject", "subject", "at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_id: Mapped[int | None] = mapped_column(Integer)  # None: the hub itself (seeding, config, CLI)
    actor_username: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # the commune the change was made in; None: province-wide
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)


# -- telling people: dossiers and their notices, the SMS outbox, alarms to people (issue 17) --
class Dossier(Base):
    """A dossier (hồ sơ) handed in at the one-stop office: who handles it and whom to tell."""

    __tablename__ = "dossiers"
    __table_args__ = (Index("ix_dossiers_due_at", "status", "due_at"),
                      Index("ix_dossiers_phone", "phone"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    procedure: Mapped[str] = mapped_column(String(300))
    counter_code: Mapped[str | None] = mapped_column(String(63))
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    citizen_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(16))  # E.164, +84…
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16))  # counter (a page) or api (the province's software)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # the commune whose office received it
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)


class DossierEvent(Base):
    """Something that happened to a dossier, once per key (the caller's event id, or the kind
    for the one-off kinds): a retried call records and notifies nothing new."""

    __tablename__ = "dossier_events"
    __table_args__ = (UniqueConstraint("dossier_id", "key", name="uq_dossier_events_dossier_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(500), default="")
    message_id: Mapped[int | None] = mapped_column(BigInteger)


class SmsTemplate(Base):
    """The admin's text for one notice kind (the defaults live in ``services/sms_templates.py``)."""

    __tablename__ = "sms_templates"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    body: Mapped[str] = mapped_column(String(1000))
    unicode: Mapped[bool] = mapped_column(Boolean, default=False)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    ask_rating: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class SmsMessage(Base):
    """One text message in the outbox: queued until the gateway accepts it, then its reports."""

    __tablename__ = "sms_messages"
    __table_args__ = (Index("ix_sms_messages_due", "status", "next_attempt_at"),
                      Index("ix_sms_messages_phone_sent", "phone", "sent_at"),
                      Index("ix_sms_messages_ref", "gateway_ref"),
                      Index("ix_sms_messages_created", "created_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    phone: Mapped[str] = mapped_column(String(16))
    audience: Mapped[str] = mapped_column(String(16))  # citizen | staff
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(String(2000))
    encoding: Mapped[str] = mapped_column(String(8))  # gsm7 | ucs2
    segments: Mapped[int] = mapped_column(Integer)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    asks_rating: Mapped[bool] = mapped_column(Boolean, default=False)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id", ondelete="SET NULL"))
    alarm_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    hold_reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    gateway: Mapped[str | None] = mapped_column(String(16))
    gateway_ref: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SmsReport(Base):
    """A delivery report from the gateway, stored once (it may come before its message's ref)."""

    __tablename__ = "sms_reports"
    __table_args__ = (UniqueConstraint("gateway", "ref", "status", name="uq_sms_reports_gateway_ref_status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    gateway: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    raw: Mapped[str] = mapped_column(String(500), default="")


class SmsInbound(Base):
    """A text received through the gateway and what the hub made of it (stored once per ref)."""

    __tablename__ = "sms_inbound"
    __table_args__ = (UniqueConstraint("gateway", "ref", name="uq_sms_inbound_gateway_ref"),
                      Index("ix_sms_inbound_received", "received_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    gateway: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(1000))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # opt_out | rating | rated_already | unknown
    dossier_id: Mapped[int | None] = mapped_column(BigInteger)


class SmsOptOut(Base):
    """A number that asked (TU CHOI) or was set by the admin to get no more messages."""

    __tablename__ = "sms_optouts"
    phone: Mapped[str] = mapped_column(String(16), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(64))  # "citizen" (a reply) or the admin's username
    reason: Mapped[str] = mapped_column(String(200), default="")


class DossierRating(Base):
    """A citizen's reply 1-4 to a result notice: one rating of the dossier's counter and officer,
    kept apart from the box presses."""

    __tablename__ = "dossier_ratings"
    __table_args__ = (Index("ix_dossier_ratings_rated_at", "rated_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), unique=True)
    score: Mapped[int] = mapped_column(Integer)
    counter_code: Mapped[str | None] = mapped_column(String(63))
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    rated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    inbound_id: Mapped[int | None] = mapped_column(BigInteger)


class NotifyContact(Base):
    """A person alarms reach: by SMS, e-mail or both, for one audience, with quiet hours."""

    __tablename__ = "notify_contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    audience: Mapped[str] = mapped_column(String(16))  # it | leader
    phone: Mapped[str | None] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(200))
    rank: Mapped[int] = mapped_column(Integer, default=1)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    digest: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # the commune whose alarms reach the contact; None: the province's (every commune)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)


class OnCallShift(Base):
    """A contact on call for [starts_at, ends_at); ``rank`` orders the escalation chain."""

    __tablename__ = "oncall_shifts"
    __table_args__ = (Index("ix_oncall_shifts_time", "starts_at", "ends_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("notify_contacts.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    rank: Mapped[int] = mapped_column(Integer, default=1)


class AlarmPage(Base):
    """One contact paged for one alarm at one step of its escalation (once per key)."""

    __tablename__ = "alarm_pages"
    __table_args__ = (UniqueConstraint("alarm_id", "step", "contact_id", name="uq_alarm_pages_alarm_step"),
                      Index("ix_alarm_pages_alarm", "alarm_id", "at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer)
    contact_id: Mapped[int] = mapped_column(ForeignKey("notify_contacts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(16))  # raised | escalated | repeat
    sms_id: Mapped[int | None] = mapped_column(BigInteger)
    email_id: Mapped[int | None] = mapped_column(BigInteger)


class EmailMessage(Base):
    """One e-mail in the outbox (alarm pages and digests), sent through SMTP with retries."""

    __tablename__ = "email_messages"
    __table_args__ = (Index("ix_email_messages_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    to_addr: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # alarm | digest
    alarm_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # queued | sending | sent | failed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# -- putting a town into service: enrollment, the node's config, fleet commands (issue 15) --
class EnrollmentCode(Base):
    """A one-time code IT gives to whoever sets a node up (``thanthien edge enroll``): valid until
    ``expires_at``, once; only its SHA-256 is kept. A newer code for the node replaces it."""

    __tablename__ = "enrollment_codes"
    __table_args__ = (Index("ix_enrollment_codes_node", "node_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    used_from: Mapped[str] = mapped_column(String(64), default="")
    replaced_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NodeCredential(Base):
    """A broker identity issued to a node at enrollment: a password (kept as the Mosquitto hash
    the broker's password file holds) or a client certificate (its serial, for the CRL). The one
    in force has no ``revoked_at``; re-enrolling revokes it, retiring the node too. No foreign
    key: a revoked certificate stays in the CRL after its node is gone."""

    __tablename__ = "node_credentials"
    __table_args__ = (Index("ix_node_credentials_node", "node_id", "issued_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))  # password | certificate
    password_hash: Mapped[str | None] = mapped_column(String(255))
    cert_serial: Mapped[str | None] = mapped_column(String(40))
    cert_not_after: Mapped[datetime | None] = mapped_column(UtcDateTime)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoke_reason: Mapped[str] = mapped_column(String(32), default="")


class NodeConfigRow(Base):
    """What the hub holds of a node's configuration (``services/node_config.py``): the values it
    owns (``settings``: speaker volume and warm-up, GPIO of boxes and relay, camera probes,
    telemetry), the version last published, and what the node last said it runs."""

    __tablename__ = "node_configs"
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[str] = mapped_column(String(64), default="")
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
    reported_version: Mapped[int | None] = mapped_column(Integer)
    reported_refused: Mapped[int | None] = mapped_column(Integer)
    reported_error: Mapped[str] = mapped_column(String(1000), default="")
    reported_restart: Mapped[list[str]] = mapped_column(JSON, default=list)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NodeCommand(Base):
    """A command IT sent to a node from the page or the API, and its answer (or why none came)."""

    __tablename__ = "node_commands"
    __table_args__ = (Index("ix_node_commands_node_sent", "node_id", "sent_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))  # sent | ok | error | timeout | offline
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(String(500), default="")


class NodeStateChange(Base):
    """Every change of a node's state (online, offline, lost) with its time, reason and session:
    the node page's history. Written by the flush that changes ``nodes.state`` (below)."""

    __tablename__ = "node_state_changes"
    __table_args__ = (Index("ix_node_state_changes_node_at", "node_id", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(63))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200), default="")
    session: Mapped[int] = mapped_column(BigInteger, default=0)


class CameraThumbnailRow(Base):
    """The last picture a camera's probe saw, as the node sent it with a change of health."""

    __tablename__ = "camera_thumbnails"
    __table_args__ = (UniqueConstraint("node_id", "camera", name="uq_camera_thumbnails_node_camera"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(63))
    camera: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)



class FaultReport(Base):
    """A resident's report of a loudspeaker fault (broken, too loud, too early), made from the
    QR code on its pole without a login: a ticket for IT with a due date, answered in public
    under its ``code``. It holds no personal data (the address that sent it only as a hash,
    for the rate limit)."""

    __tablename__ = "fault_reports"
    __table_args__ = (UniqueConstraint("code", name="uq_fault_reports_code"),
                      Index("ix_fault_reports_status", "status", "due_at"),
                      Index("ix_fault_reports_sender", "sender_sha256", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16))
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    device_code: Mapped[str] = mapped_column(String(63), default="")
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))  # open | answered
    answer: Mapped[str] = mapped_column(String(1000), default="")
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_by: Mapped[str] = mapped_column(String(64), default="")
    sender_sha256: Mapped[str] = mapped_column(String(64))
    # the commune of the speaker's node
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id", ondelete="RESTRICT"), index=True)


def _record_state_changes() -> None:
    """A node whose ``state`` a flush changes gets a :class:`NodeStateChange` row in the same
    transaction, whichever service or handler changed it: one INSERT for all of a flush's
    nodes, in node id order (after an outage one ingest batch brings hundreds back online; a
    mapper hook wrote them one statement each)."""
    from sqlalchemy import event, insert, inspect
    from sqlalchemy.orm import Session

    table = NodeStateChange.__table__

    def after_flush(session: Session, _context: Any) -> None:
        # the session still holds what the flush wrote as changes (its history is reset after)
        changed = sorted((obj for obj in session.dirty
                          if isinstance(obj, Node) and inspect(obj).attrs.state.history.has_changes()),
                         key=lambda node: node.id)
        if changed:
            session.connection().execute(insert(table), [
                {"node_id": node.id, "at": node.state_at or node.last_seen_at or datetime.now(UTC),
                 "state": node.state, "reason": node.state_reason or "", "session": node.session or 0}
                for node in changed])

    event.listen(Session, "after_flush", after_flush)


_record_state_changes()


class Release(Base):
    """A signed bundle of the edge agent uploaded by IT (``services/releases.py``); the file lives
    in ``<data_dir>/releases/<sha256>.tar``."""

    __tablename__ = "releases"
    version: Mapped[str] = mapped_column(String(41), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    python: Mapped[str] = mapped_column(String(16))
    platform: Mapped[str] = mapped_column(String(64))
    key_fingerprint: Mapped[str] = mapped_column(String(16))
    files: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    uploaded_by: Mapped[str] = mapped_column(String(64))


class Rollout(Base):
    """Putting a release on a zone's nodes, a list of nodes or the whole fleet, in stages."""

    __tablename__ = "rollouts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(ForeignKey("releases.version", ondelete="RESTRICT"))
    target_kind: Mapped[str] = mapped_column(String(8))  # zone | nodes | fleet
    target: Mapped[list[str]] = mapped_column(JSON, default=list)
    stages: Mapped[list[int]] = mapped_column(JSON, default=list)  # cumulative percents, the last 100
    success_share: Mapped[float] = mapped_column(Float)
    failure_threshold: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))  # running | paused | stopped | cancelled | done
    stage: Mapped[int] = mapped_column(Integer, default=0)  # the last stage opened (0-based)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RolloutNode(Base):
    """One node of a roll-out: its stage and the state it reported (offered ... kept, rolled back,
    failed, with the reason); ``published`` is what the hub last sent on its offer topic."""

    __tablename__ = "rollout_nodes"
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))  # pending | withdrawn | a ReleaseState
    reason: Mapped[str] = mapped_column(String(500), default="")
    published: Mapped[str] = mapped_column(String(8), default="")  # "" | offer | cleared
    offered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
