"""Broadcasts (bản tin): create and edit drafts, approve, archive; every change audited.

Every command takes the acting user (``actor``) and checks its role here (``hub/roles.py``):
officers, leaders and admins draft, edit and archive; leaders and admins approve. Editing an
approved broadcast puts it back to draft, so what plays has always been approved as it is.

**Four eyes.** Whoever drafted or edited a broadcast cannot approve it: another leader or admin
must (``[broadcasts] allow_self_approval`` lets the author approve in a commune with a single
leader). The audit entry of an approval names the author, the editors and the approver.

**Quiet hours.** A schedule is refused when a non-emergency occurrence would play inside quiet
hours, unless the broadcast has a **quiet-hours exception**: a leader or admin grants it for
that one broadcast with a reason (audited, shown on the calendar and the broadcast's page), so
the chairman's greeting at the moment of giao thừa (00:00) can be approved without marking it
emergency, which would let it cut into anything. The draft for it is stored when its author
asks for the exception (``quiet_exception_requested``); it cannot be approved before the
exception is granted. An edit that changes when, what or where it plays (schedule, audio,
targets) drops the exception: it was granted for the broadcast as it was. Granting and
withdrawing one are also in the administrative audit log (``services/audit.py``). A one-off
time must lie ahead.

**Communes (issue 20).** A broadcast belongs to the commune of the user who drafts it
(``Broadcast.commune_id``); it may target only that commune's zones and speakers, and its
"all speakers" means all of that commune's. A province user's broadcast is a *province
broadcast* (``commune_id`` ``None``): it may target zones and speakers of several communes (an
emergency across the province). A commune user reads their commune's broadcasts and the
province broadcasts that target their commune (all speakers, or one of their zones or
speakers): those are on their calendar, with the delivery reports of their own speakers only;
a province broadcast is changed by province users only. Another commune's broadcast does not
exist for a commune user (:func:`get_broadcast` raises ``NotFound``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Broadcast, BroadcastAudit, Device, MediaItem, Node, Zone
from thanthien.hub.db.session import mark_changed
from thanthien.hub.roles import BROADCAST_APPROVERS, BROADCAST_EDITORS, Actor, Role, require
from thanthien.hub.services import audit as admin_audit
from thanthien.hub.services import media_items, relays, zone_rules
from thanthien.hub.services.errors import Conflict, Forbidden, Invalid, NotFound
from thanthien.hub.services.media import MediaLibrary
from thanthien.hub.services.schedule import (
    HOLIDAYS,
    BroadcastSettings,
    Schedule,
    compile_rrule,
    describe,
    in_quiet_hours,
    occurrences,
    parse_hhmm,
)
from thanthien.hub.tenancy import Tenant, reaches, visible_clause

log = logging.getLogger(__name__)

Priority = Literal["normal", "priority", "emergency"]
TargetKind = Literal["all", "zones", "nodes"]
PRIORITY_LABELS = {"normal": "thông thường", "priority": "ưu tiên", "emergency": "khẩn cấp"}
STATUS_LABELS = {"draft": "bản nháp", "approved": "đã phê duyệt", "archived": "đã lưu trữ"}
AUDIT_LABELS = {
    "created": "tạo bản nháp",
    "updated": "sửa (về bản nháp)",
    "approved": "phê duyệt",
    "archived": "lưu trữ",
    "play_now": "phát ngay",
    "live_started": "bắt đầu phát trực tiếp",
    "live_ended": "kết thúc phát trực tiếp",
    "quiet_exception_granted": "cho phép ngoại lệ giờ yên tĩnh",
    "quiet_exception_revoked": "thu hồi ngoại lệ giờ yên tĩnh",
    "rules_changed": "về bản nháp vì quy định phát của khu vực đã đổi",
}
REASON_MAX = 500


class BroadcastSpec(BaseModel):
    """What an officer fills in (the API body of create and update)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    media_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$",
        description="The file to play; a relay's fallback file (none for a relay falling back to silence).")
    stream_url: str | None = Field(
        None, max_length=500, description="A relay (tiếp sóng): the station's Icecast/HTTP audio stream.")
    stream_fallback: Literal["file", "silence"] = Field(
        "file", description="A relay whose stream dies or goes silent plays its file, or silence.")
    slot_s: float | None = Field(None, description="A relay: how long the speakers relay the stream (s).")
    target_kind: TargetKind = "all"
    target_zones: list[str] = Field(default_factory=list, max_length=500)
    target_nodes: list[str] = Field(default_factory=list, max_length=5000)
    volume: int = Field(100, ge=0, le=100)
    priority: Priority = "normal"
    schedule_kind: Literal["once", "daily", "weekdays", "rrule", "holiday"]
    start_at: datetime | None = Field(None, description="once: when (ISO 8601 with offset).")
    local_time: str | None = Field(None, description="daily, weekdays, holiday: HH:MM in the hub's zone.")
    weekdays: list[int] = Field(default_factory=list, description="weekdays: 1 = Monday .. 7 = Sunday.")
    rrule: str | None = Field(None, max_length=500, description="rrule: an RFC 5545 RRULE line.")
    holidays: list[str] = Field(default_factory=list, description=f"holiday: keys of {sorted(HOLIDAYS)}.")
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    quiet_exception_requested: bool = Field(
        False,
        description="The schedule plays inside quiet hours on purpose: store the draft anyway; it can be "
        "approved once a leader grants it a quiet-hours exception (POST …/quiet-exception).",
    )


def schedule_of(b: Broadcast) -> Schedule:
    return Schedule(
        kind=b.schedule_kind,
        start_at=b.start_at,
        local_time=b.local_time,
        weekdays=tuple(b.weekdays or ()),
        rrule=b.rrule,
        holidays=tuple(b.holidays or ()),
        valid_from=b.valid_from,
        valid_until=b.valid_until,
    )


BROADCAST_CHANGES = "broadcasts"
"""The change topic (``db.session.mark_changed``) after which plans and jobs follow."""


class QuietExceptionView(BaseModel):
    """A quiet-hours exception: who granted it, when, and why."""

    granted_by: str
    granted_at: datetime
    reason: str


def quiet_exception_of(b: Broadcast) -> QuietExceptionView | None:
    if b.quiet_exception_by is None or b.quiet_exception_at is None:
        return None
    return QuietExceptionView(granted_by=b.quiet_exception_by, granted_at=b.quiet_exception_at,
                              reason=b.quiet_exception_reason or "")


class BroadcastView(BaseModel):
    """The one public shape of a broadcast: the API's answer, the audit snapshot and the
    edit form all read it (times in UTC, plus ``*_local`` in the hub's zone)."""

    id: int
    title: str
    media_sha256: str
    target_kind: str
    target_zones: list[str]
    target_nodes: list[str]
    volume: int
    priority: str
    schedule_kind: str
    schedule_text: str
    start_at: datetime | None
    start_at_local: str | None
    local_time: str | None
    weekdays: list[int]
    rrule: str | None
    holidays: list[str]
    valid_from: datetime | None
    valid_until: datetime | None
    status: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    quiet_exception: QuietExceptionView | None = Field(
        description="The quiet-hours exception a leader granted this broadcast, if any."
    )
    stream_url: str | None = Field(None, description="A relay: the station's stream.")
    stream_fallback: str | None = Field(None, description="A relay: file or silence once the stream fails.")
    slot_s: float | None = Field(None, description="A relay: its slot (s).")

    @classmethod
    def of(cls, b: Broadcast, tz: ZoneInfo) -> BroadcastView:
        return cls(
            id=b.id, title=b.title, media_sha256=b.media_sha256, target_kind=b.target_kind,
            target_zones=list(b.target_zones or []), target_nodes=list(b.target_nodes or []),
            volume=b.volume, priority=b.priority, schedule_kind=b.schedule_kind,
            schedule_text=describe(schedule_of(b), tz), start_at=b.start_at,
            start_at_local=b.start_at.astimezone(tz).isoformat() if b.start_at else None,
            local_time=b.local_time, weekdays=list(b.weekdays or []), rrule=b.rrule,
            holidays=list(b.holidays or []), valid_from=b.valid_from, valid_until=b.valid_until,
            status=b.status, created_by=b.created_by, created_at=b.created_at, updated_at=b.updated_at,
            approved_by=b.approved_by, approved_at=b.approved_at, quiet_exception=quiet_exception_of(b),
            stream_url=b.stream_url, stream_fallback=b.stream_fallback, slot_s=b.slot_s,
        )


# What the audit log keeps of a broadcast after each change: what it is, not who made it when.
_SNAPSHOT = {"title", "media_sha256", "target_kind", "target_zones", "target_nodes", "volume", "priority",
             "schedule_kind", "start_at", "local_time", "weekdays", "rrule", "holidays", "valid_from",
             "valid_until", "status", "quiet_exception", "stream_url", "stream_fallback", "slot_s"}


def _snapshot(b: Broadcast) -> dict[str, Any]:
    return BroadcastView.of(b, ZoneInfo("UTC")).model_dump(mode="json", include=_SNAPSHOT)


def audit(
    session: Session,
    *,
    broadcast: Broadcast,
    username: str,
    action: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    session.flush()
    session.add(
        BroadcastAudit(
            broadcast_id=broadcast.id,
            at=now,
            username=username,
            action=action,
            details={**_snapshot(broadcast), **(extra or {})},
        )
    )


# -- validation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Within:
    """The commune a broadcast is for (``None``: the province), as a :class:`Tenant`."""

    commune_id: int | None


def _check(
    session: Session, spec: BroadcastSpec, *, within: Tenant, now: datetime, tz: ZoneInfo,
    cfg: BroadcastSettings
) -> Schedule:
    """Refuse a spec that is wrong, or names a file, zone or speaker outside ``within``'s reach
    (a commune broadcast: its commune's and the province library's files, its commune's places)."""
    relays.check(spec.stream_url, spec.stream_fallback, spec.slot_s, spec.media_sha256)
    media = session.get(MediaItem, spec.media_sha256) if spec.media_sha256 else None
    if media is None or (media.commune_id is not None and not reaches(within, media.commune_id)):
        raise Invalid("Chưa chọn tệp âm thanh có trong thư viện.")
    if spec.target_kind == "zones":
        if not spec.target_zones:
            raise Invalid("Chọn ít nhất một khu vực phát.")
        known = set(session.scalars(select(Zone.code).where(Zone.code.in_(spec.target_zones),
                                                            visible_clause(within, Zone.commune_id))))
        if missing := sorted(set(spec.target_zones) - known):
            raise Invalid(f"Không có khu vực phát: {', '.join(missing)}.")
    if spec.target_kind == "nodes":
        if not spec.target_nodes:
            raise Invalid("Chọn ít nhất một cụm loa.")
        known = set(
            session.scalars(
                select(Device.node_id).join(Node, Node.id == Device.node_id)
                .where(Device.node_id.in_(spec.target_nodes), Device.kind == "speaker",
                       visible_clause(within, Node.commune_id))
            )
        )
        if missing := sorted(set(spec.target_nodes) - known):
            raise Invalid(f"Không phải cụm loa đã đăng ký: {', '.join(missing)}.")
    sched = Schedule(
        kind=spec.schedule_kind,
        start_at=spec.start_at,
        local_time=spec.local_time,
        weekdays=tuple(sorted(set(spec.weekdays))),
        rrule=spec.rrule,
        holidays=tuple(dict.fromkeys(spec.holidays)),
        valid_from=spec.valid_from,
        valid_until=spec.valid_until,
    )
    for value in (spec.start_at, spec.valid_from, spec.valid_until):
        if value is not None and value.tzinfo is None:
            raise Invalid("Thời điểm phải có múi giờ (ví dụ 2026-03-02T07:00:00+07:00).")
        if value is not None and not 2000 <= value.year <= 2200:
            raise Invalid("Thời điểm phải nằm trong các năm 2000–2200.")
    kind = spec.schedule_kind
    if kind == "once":
        if spec.start_at is None:
            raise Invalid("Chọn thời điểm phát.")
        if spec.start_at <= now:
            raise Invalid("Thời điểm phát đã qua.")
    elif kind == "rrule":
        try:
            compile_rrule(spec.rrule or "", spec.valid_from or now, tz)
        except ValueError as exc:
            raise Invalid(str(exc)[:1].upper() + str(exc)[1:]) from None
    else:
        try:
            parse_hhmm(spec.local_time or "")
        except ValueError:
            raise Invalid("Giờ phát phải có dạng HH:MM, ví dụ 06:30.") from None
        if kind == "weekdays" and (not spec.weekdays or any(d < 1 or d > 7 for d in spec.weekdays)):
            raise Invalid("Chọn các thứ trong tuần (1 = Thứ Hai … 7 = Chủ nhật).")
        if kind == "holiday":
            if not spec.holidays:
                raise Invalid("Chọn ít nhất một ngày lễ.")
            if unknown := [h for h in spec.holidays if h not in HOLIDAYS]:
                raise Invalid(f"Ngày lễ không có trong danh mục: {', '.join(unknown)}.")
    if spec.valid_from and spec.valid_until and spec.valid_until <= spec.valid_from:
        raise Invalid("Ngày kết thúc phải sau ngày bắt đầu.")
    return sched


def first_quiet(
    sched: Schedule, duration_s: float, *, now: datetime, tz: ZoneInfo, cfg: BroadcastSettings
) -> datetime | None:
    """The first occurrence from ``now`` on that would be playing inside quiet hours, if any."""
    horizon = now + timedelta(days=cfg.rrule_check_days)
    if sched.kind == "holiday":
        horizon = now + timedelta(days=max(cfg.rrule_check_days, 400))
    for at in occurrences(sched, start=now, end=horizon, tz=tz, limit=2000):
        if in_quiet_hours(at, duration_s, tz=tz, quiet_start=cfg.quiet_start, quiet_end=cfg.quiet_end):
            return at
    return None


def _quiet_refusal(
    at: datetime, duration_s: float, *, tz: ZoneInfo, cfg: BroadcastSettings, then: str
) -> Invalid:
    return Invalid(
        f"Lịch phát rơi vào giờ yên tĩnh ({cfg.quiet_start}–{cfg.quiet_end}): lần phát lúc "
        f"{at.astimezone(tz):%H:%M %d/%m/%Y} (dài {duration_s:.0f} giây). Chỉ bản tin khẩn cấp, hoặc bản tin "
        f"được lãnh đạo cho phép ngoại lệ giờ yên tĩnh, được phát trong giờ yên tĩnh; {then}"
    )


def _duration(session: Session, sha256: str | None, slot_s: float | None = None) -> float:
    """How long a broadcast plays: a relay its slot, any other its file."""
    if slot_s is not None:
        return slot_s
    media = session.get(MediaItem, sha256) if sha256 else None
    return media.duration_s if media else 0.0


def _with_media(session: Session, spec: BroadcastSpec, lib: MediaLibrary | None,
                now: datetime) -> BroadcastSpec:
    """A relay falling back to silence names the library's second of silence."""
    if spec.media_sha256 is None and spec.stream_url is not None and spec.stream_fallback == "silence":
        if lib is None:
            raise Invalid("Chưa chọn tệp âm thanh có trong thư viện.")
        return spec.model_copy(update={"media_sha256": relays.silence_media(session, lib=lib, now=now)})
    return spec


def quiet_conflict(
    session: Session, b: Broadcast, *, now: datetime, tz: ZoneInfo, cfg: BroadcastSettings
) -> datetime | None:
    """When a broadcast would play inside quiet hours without leave: its first such occurrence
    (``None`` for an emergency, a broadcast with an exception, one that stays outside, a play-now
    command or an archived broadcast)."""
    if (b.priority == "emergency" or b.quiet_exception_by is not None or b.schedule_kind == "now"
            or b.status == "archived"):
        return None
    return first_quiet(schedule_of(b), _duration(session, b.media_sha256, b.slot_s), now=now, tz=tz, cfg=cfg)


def _plays(b: Broadcast) -> tuple[Any, ...]:
    """When, what and where a broadcast plays: what a quiet-hours exception is granted for."""
    return (schedule_of(b), b.media_sha256, b.target_kind, tuple(b.target_zones or ()),
            tuple(b.target_nodes or ()), b.stream_url, b.slot_s)


def _apply(b: Broadcast, spec: BroadcastSpec, sched: Schedule) -> None:
    assert spec.media_sha256 is not None  # _check refused it otherwise
    b.title, b.media_sha256, b.volume, b.priority = (
        spec.title.strip(),
        spec.media_sha256,
        spec.volume,
        spec.priority,
    )
    b.stream_url = spec.stream_url
    b.stream_fallback = spec.stream_fallback if spec.stream_url else None
    b.slot_s = spec.slot_s if spec.stream_url else None
    b.target_kind = spec.target_kind
    b.target_zones = sorted(set(spec.target_zones)) if spec.target_kind == "zones" else []
    b.target_nodes = sorted(set(spec.target_nodes)) if spec.target_kind == "nodes" else []
    b.schedule_kind = spec.schedule_kind
    b.start_at = spec.start_at if spec.schedule_kind == "once" else None
    b.local_time = spec.local_time if spec.schedule_kind in ("daily", "weekdays", "holiday") else None
    b.weekdays = list(sched.weekdays) if spec.schedule_kind == "weekdays" else []
    b.rrule = spec.rrule.strip() if spec.schedule_kind == "rrule" and spec.rrule else None
    b.holidays = list(sched.holidays) if spec.schedule_kind == "holiday" else []
    b.valid_from, b.valid_until = spec.valid_from, spec.valid_until


# -- commands ------------------------------------------------------------------------------
def create_broadcast(
    session: Session,
    *,
    spec: BroadcastSpec,
    actor: Actor,
    now: datetime,
    tz: ZoneInfo,
    cfg: BroadcastSettings,
    lib: MediaLibrary | None = None,
) -> Broadcast:
    """Draft a broadcast (``lib``: where a relay's silence is kept)."""
    require(actor, BROADCAST_EDITORS)
    spec = _with_media(session, spec, lib, now)
    commune_id = getattr(actor, "commune_id", None)
    sched = _check(session, spec, within=Within(commune_id), now=now, tz=tz, cfg=cfg)
    duration = _duration(session, spec.media_sha256, spec.slot_s)
    quiet = None if spec.priority == "emergency" else first_quiet(sched, duration, now=now, tz=tz, cfg=cfg)
    if quiet is not None and not spec.quiet_exception_requested:
        raise _quiet_refusal(quiet, duration, tz=tz, cfg=cfg,
                             then="hãy chọn giờ khác, hoặc lưu bản nháp kèm đề nghị ngoại lệ.")
    b = Broadcast(status="draft", created_by=actor.username, created_at=now, updated_at=now,
                  commune_id=commune_id)
    _apply(b, spec, sched)
    if b.schedule_kind == "rrule" and b.valid_from is None:
        b.valid_from = now  # the rule's DTSTART
    zone_rules.enforce(session, zone_rules.candidate_of(
        b, duration, exception_requested=quiet is not None and spec.quiet_exception_requested),
        now=now, tz=tz, cfg=cfg)
    session.add(b)
    extra = {"quiet_exception_needed": quiet.isoformat()} if quiet is not None else None
    audit(session, broadcast=b, username=actor.username, action="created", now=now, extra=extra)
    return b


@dataclass
class Reach:
    """What of a commune a province broadcast may target: its zone codes and speaker nodes."""

    zones: set[str]
    nodes: set[str]


def reach_of(session: Session, commune_id: int) -> Reach:
    zones = set(session.scalars(select(Zone.code).where(Zone.commune_id == commune_id)))
    nodes = set(session.scalars(select(Node.id).where(Node.commune_id == commune_id)))
    return Reach(zones, nodes)


def _targets_reach(b: Broadcast, reach: Reach) -> bool:
    if b.target_kind == "all":
        return True
    if b.target_kind == "zones":
        return bool(reach.zones.intersection(b.target_zones or ()))
    return bool(reach.nodes.intersection(b.target_nodes or ()))


def sees(session: Session, viewer: Tenant, b: Broadcast, *, reach: Reach | None = None) -> bool:
    """Whether ``viewer`` reads ``b``: their commune's, or a province broadcast targeting their
    commune (``reach``: the commune's :func:`reach_of`, when many broadcasts are asked about)."""
    if reaches(viewer, b.commune_id):
        return True
    if b.commune_id is not None:
        return False
    mine = getattr(viewer, "commune_id", None)
    return _targets_reach(b, reach or reach_of(session, mine))


def get_broadcast(session: Session, *, viewer: Tenant, broadcast_id: int) -> Broadcast:
    """The broadcast, if ``viewer`` reads it (else ``NotFound``, as for one that does not exist)."""
    b = session.get(Broadcast, broadcast_id)
    if b is None or not sees(session, viewer, b):
        raise NotFound(f"Không có bản tin #{broadcast_id}")
    return b


def get_own(session: Session, *, actor: Tenant, broadcast_id: int) -> Broadcast:
    """The broadcast ``actor`` may change: one they read that is not a province broadcast seen
    by a commune user (refused: ``Forbidden``)."""
    b = get_broadcast(session, viewer=actor, broadcast_id=broadcast_id)
    if not reaches(actor, b.commune_id):
        raise Forbidden("Bản tin cấp tỉnh chỉ tài khoản cấp tỉnh được thay đổi.")
    return b


def _open(session: Session, *, broadcast_id: int, actor: Actor, permission: tuple[Role, ...]) -> Broadcast:
    """The broadcast ``actor`` changes, if their role is in ``permission``: not archived, not play-now."""
    require(actor, permission)
    b = get_own(session, actor=actor, broadcast_id=broadcast_id)
    if b.status == "archived" or b.schedule_kind == "now":
        raise Conflict("Bản tin đã lưu trữ hoặc đã phát ngay, không sửa được.")
    return b


def update_broadcast(
    session: Session,
    *,
    broadcast_id: int,
    spec: BroadcastSpec,
    actor: Actor,
    now: datetime,
    tz: ZoneInfo,
    cfg: BroadcastSettings,
    lib: MediaLibrary | None = None,
) -> Broadcast:
    b = _open(session, broadcast_id=broadcast_id, actor=actor, permission=BROADCAST_EDITORS)
    spec = _with_media(session, spec, lib, now)
    sched = _check(session, spec, within=Within(b.commune_id), now=now, tz=tz, cfg=cfg)
    edited = Broadcast(commune_id=b.commune_id)  # what the broadcast becomes, to compare before changing it
    _apply(edited, spec, sched)
    if edited.schedule_kind == "rrule" and edited.valid_from is None:
        edited.valid_from = now
    keeps_exception = b.quiet_exception_by is not None and _plays(edited) == _plays(b)
    duration = _duration(session, spec.media_sha256, spec.slot_s)
    quiet = None if spec.priority == "emergency" else first_quiet(sched, duration, now=now, tz=tz, cfg=cfg)
    if quiet is not None and not keeps_exception and not spec.quiet_exception_requested:
        then = ("ngoại lệ đã cấp không còn áp dụng vì lịch, âm thanh hoặc phạm vi phát đã đổi; "
                if b.quiet_exception_by is not None else "")
        raise _quiet_refusal(quiet, duration, tz=tz, cfg=cfg,
                             then=then + "hãy chọn giờ khác, hoặc lưu bản nháp kèm đề nghị ngoại lệ.")
    asks = quiet is not None and (keeps_exception or spec.quiet_exception_requested)
    zone_rules.enforce(session, zone_rules.candidate_of(edited, duration, broadcast_id=b.id,
                                                        exception_requested=asks), now=now, tz=tz, cfg=cfg)
    was = b.status
    extra: dict[str, Any] = {"previous_status": was}
    if b.quiet_exception_by is not None and not keeps_exception:
        extra["quiet_exception_dropped"] = quiet_exception_of(b).model_dump(mode="json")  # type: ignore[union-attr]
        b.quiet_exception_by = b.quiet_exception_at = b.quiet_exception_reason = None
    if quiet is not None and not keeps_exception:
        extra["quiet_exception_needed"] = quiet.isoformat()
    _apply(b, spec, sched)
    b.valid_from = edited.valid_from
    b.status, b.updated_at, b.approved_by, b.approved_at = "draft", now, None, None
    audit(session, broadcast=b, username=actor.username, action="updated", now=now, extra=extra)
    mark_changed(session, BROADCAST_CHANGES)
    return b


def authors(session: Session, b: Broadcast) -> list[str]:
    """Who wrote the broadcast as it is: its author and everyone who edited it."""
    editors = session.scalars(
        select(BroadcastAudit.username)
        .where(BroadcastAudit.broadcast_id == b.id, BroadcastAudit.action.in_(("created", "updated")))
        .order_by(BroadcastAudit.at, BroadcastAudit.id)
    )
    return list(dict.fromkeys([b.created_by, *editors]))


def approval_refusal(session: Session, b: Broadcast, *, actor: Actor, cfg: BroadcastSettings) -> str | None:
    """Why ``actor`` may not approve ``b`` (its role, or four eyes), or ``None``."""
    try:
        require(actor, BROADCAST_APPROVERS)
    except Forbidden as exc:
        return str(exc)
    wrote = authors(session, b)
    if actor.username in wrote and not cfg.allow_self_approval:
        return (
            f"Bạn đã soạn hoặc sửa bản tin này nên không tự phê duyệt được; cần một lãnh đạo khác phê duyệt "
            f"(người soạn, sửa: {', '.join(wrote)})."
        )
    return None


def approve_broadcast(
    session: Session, *, broadcast_id: int, actor: Actor, now: datetime, tz: ZoneInfo, cfg: BroadcastSettings
) -> Broadcast:
    require(actor, BROADCAST_APPROVERS)
    b = get_own(session, actor=actor, broadcast_id=broadcast_id)
    if b.status != "draft":
        raise Conflict(f"Chỉ phê duyệt được bản nháp (bản tin này: {STATUS_LABELS.get(b.status, b.status)}).")
    if (refusal := approval_refusal(session, b, actor=actor, cfg=cfg)) is not None:
        raise Forbidden(refusal)
    if b.schedule_kind == "once" and b.start_at is not None and b.start_at <= now:
        raise Invalid("Thời điểm phát đã qua; hãy sửa lịch trước khi phê duyệt.")
    if (quiet := quiet_conflict(session, b, now=now, tz=tz, cfg=cfg)) is not None:
        raise _quiet_refusal(quiet, _duration(session, b.media_sha256, b.slot_s), tz=tz, cfg=cfg,
                             then="cần lãnh đạo cho phép ngoại lệ giờ yên tĩnh trước khi phê duyệt.")
    unheard = media_items.needs_listen(session, sha256=b.media_sha256, username=actor.username)
    if unheard is not None:
        raise Invalid(unheard)
    duration = _duration(session, b.media_sha256)
    zone_rules.enforce(session, zone_rules.candidate_of(b, duration), now=now, tz=tz, cfg=cfg)
    wrote = authors(session, b)
    b.status, b.approved_by, b.approved_at, b.updated_at = "approved", actor.username, now, now
    audit(session, broadcast=b, username=actor.username, action="approved", now=now,
          extra={"author": b.created_by, "editors": wrote[1:], "approver": actor.username,
                 "self_approved": actor.username in wrote})
    mark_changed(session, BROADCAST_CHANGES)
    return b


def grant_quiet_exception(
    session: Session,
    *,
    broadcast_id: int,
    actor: Actor,
    reason: str,
    now: datetime,
    tz: ZoneInfo,
    cfg: BroadcastSettings,
) -> Broadcast:
    """Let this one broadcast, as it is, play inside quiet hours (a leader's decision, with why)."""
    b = _open(session, broadcast_id=broadcast_id, actor=actor, permission=BROADCAST_APPROVERS)
    # one line, without NUL or other control characters (PostgreSQL refuses NUL in text)
    reason = " ".join("".join(c for c in reason if c.isprintable() or c.isspace()).split())
    if not reason:
        raise Invalid("Ghi rõ lý do cho phép phát trong giờ yên tĩnh.")
    if len(reason) > REASON_MAX:
        raise Invalid(f"Lý do dài tối đa {REASON_MAX} ký tự.")
    if b.quiet_exception_by is not None:
        raise Conflict(f"Bản tin đã được {b.quiet_exception_by} cho phép ngoại lệ giờ yên tĩnh.")
    if b.priority == "emergency":
        raise Invalid("Bản tin khẩn cấp được phát trong giờ yên tĩnh, không cần ngoại lệ.")
    quiet = quiet_conflict(session, b, now=now, tz=tz, cfg=cfg)
    if quiet is None:
        raise Invalid("Lịch phát không rơi vào giờ yên tĩnh; không cần ngoại lệ.")
    b.quiet_exception_by, b.quiet_exception_at, b.quiet_exception_reason = actor.username, now, reason
    b.updated_at = now
    audit(session, broadcast=b, username=actor.username, action="quiet_exception_granted", now=now,
          extra={"reason": reason, "first_quiet_occurrence": quiet.isoformat()})
    admin_audit.record(session, actor=actor, action="broadcast.quiet_hours_exception",
                       subject=f"broadcast:{b.id}", at=now,
                       details={"title": b.title, "reason": reason, "first_quiet_occurrence": quiet})
    return b


def revoke_quiet_exception(
    session: Session, *, broadcast_id: int, actor: Actor, now: datetime, tz: ZoneInfo, cfg: BroadcastSettings
) -> Broadcast:
    """Withdraw the exception; an approved broadcast that needs it goes back to draft."""
    b = _open(session, broadcast_id=broadcast_id, actor=actor, permission=BROADCAST_APPROVERS)
    granted = quiet_exception_of(b)
    if granted is None:
        raise Conflict("Bản tin không có ngoại lệ giờ yên tĩnh.")
    b.quiet_exception_by = b.quiet_exception_at = b.quiet_exception_reason = None
    was = b.status
    if was == "approved" and quiet_conflict(session, b, now=now, tz=tz, cfg=cfg) is not None:
        b.status, b.approved_by, b.approved_at = "draft", None, None
        mark_changed(session, BROADCAST_CHANGES)
    b.updated_at = now
    audit(session, broadcast=b, username=actor.username, action="quiet_exception_revoked", now=now,
          extra={"previous_status": was, "revoked": granted.model_dump(mode="json")})
    admin_audit.record(session, actor=actor, action="broadcast.quiet_hours_exception_revoked",
                       subject=f"broadcast:{b.id}", at=now,
                       details={"title": b.title, "reason": granted.reason, "granted_by": granted.granted_by,
                                "status": {"from": was, "to": b.status}})
    return b


def archive_broadcast(session: Session, *, broadcast_id: int, actor: Actor, now: datetime) -> Broadcast:
    require(actor, BROADCAST_EDITORS)
    b = get_own(session, actor=actor, broadcast_id=broadcast_id)
    if b.status == "archived":
        raise Conflict("Bản tin đã được lưu trữ.")
    b.status, b.updated_at = "archived", now
    audit(session, broadcast=b, username=actor.username, action="archived", now=now)
    mark_changed(session, BROADCAST_CHANGES)
    return b


def list_broadcasts(
    session: Session, *, viewer: Tenant, status: str | None = None, include_now: bool = False
) -> list[Broadcast]:
    """The broadcasts ``viewer`` reads (:func:`sees`), newest first."""
    q = select(Broadcast).where(visible_clause(viewer, Broadcast.commune_id, shared=True))
    q = q.order_by(Broadcast.id.desc())
    if status is not None:
        q = q.where(Broadcast.status == status)
    if not include_now:
        q = q.where(Broadcast.schedule_kind != "now")
    return only_seen(session, viewer, session.scalars(q))


def only_seen(session: Session, viewer: Tenant, rows: Any) -> list[Broadcast]:
    """``rows`` (broadcasts) that ``viewer`` reads."""
    mine = getattr(viewer, "commune_id", None)
    if mine is None:
        return list(rows)
    reach = reach_of(session, mine)
    return [b for b in rows if sees(session, viewer, b, reach=reach)]


def seen_ids(session: Session, viewer: Tenant) -> set[int] | None:
    """The ids of the broadcasts ``viewer`` reads (``None``: every one, a province viewer)."""
    if getattr(viewer, "commune_id", None) is None:
        return None
    return {b.id for b in list_broadcasts(session, viewer=viewer, include_now=True)}


def audit_log(session: Session, *, viewer: Tenant, broadcast_id: int) -> list[BroadcastAudit]:
    get_broadcast(session, viewer=viewer, broadcast_id=broadcast_id)
    return list(
        session.scalars(
            select(BroadcastAudit)
            .where(BroadcastAudit.broadcast_id == broadcast_id)
            .order_by(BroadcastAudit.at, BroadcastAudit.id)
        )
    )


# -- targets -------------------------------------------------------------------------------
def speaker_nodes(session: Session, *, within: Tenant) -> dict[str, set[str]]:
    """Registered nodes in service with a speaker device in service -> the zone codes their
    speakers serve (a retired node or speaker is targeted no more, so never counted missed);
    only ``within``'s commune's nodes (a province ``within``: every commune's)."""
    rows = session.execute(
        select(Device.node_id, Zone.code)
        .join(Node, Node.id == Device.node_id)
        .outerjoin(Zone, Zone.id == Device.zone_id)
        .where(Device.kind == "speaker", Node.registered.is_(True), Node.retired_at.is_(None),
               Device.retired_at.is_(None), visible_clause(within, Node.commune_id))
    )
    out: dict[str, set[str]] = {}
    for node_id, zone in rows:
        out.setdefault(node_id, set())
        if zone is not None:
            out[node_id].add(zone)
    return out


def resolve_targets(
    kind: str, zones: list[str], nodes: list[str], speakers: dict[str, set[str]]
) -> list[str]:
    if kind == "all":
        return sorted(speakers)
    if kind == "zones":
        wanted = set(zones)
        return sorted(n for n, z in speakers.items() if z & wanted)
    return sorted(n for n in set(nodes) if n in speakers)


class SpeakerCache:
    """:func:`speaker_nodes` per commune, read once each (for loops over many broadcasts)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._by: dict[int | None, dict[str, set[str]]] = {}

    def of(self, within: Tenant) -> dict[str, set[str]]:
        key = getattr(within, "commune_id", None)
        if key not in self._by:
            self._by[key] = speaker_nodes(self.session, within=Within(key))
        return self._by[key]

    def targets(self, b: Any) -> list[str]:
        """The nodes broadcast ``b`` (a row or a candidate with ``commune_id``) plays on."""
        return resolve_targets(b.target_kind, list(b.target_zones or []), list(b.target_nodes or []),
                               self.of(b))


def targets_of(session: Session, b: Broadcast) -> list[str]:
    """The speaker nodes ``b`` plays on: of its commune only, unless a province broadcast."""
    return SpeakerCache(session).targets(b)
