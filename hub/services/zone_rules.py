"""When and how loud the speakers may play: the rule of each zone, its speakers' overrides and
the commune's (issue 19 item 3). Residents' top complaints are broadcasts too early, too loud
and too many; the commune sets, per zone (bản / tổ dân phố) and where needed per speaker
(near a school or the health station):

* a **volume profile**: bands of the day, each with the loudest level allowed in it (e.g.
  05:30–06:30 at most 60 %); a broadcast plays at its own volume or the band's, whichever is
  lower (the lowest band it overlaps);
* a **daily minutes cap**: non-emergency broadcasts of one local day add up to at most this;
* the **slots** the commune allows: the only times a non-emergency broadcast may play, each a
  start and a length (a ward in Đà Nẵng reads Nghị định 49/2024 as two 60-minute slots from
  05:30 and 17:00; nothing here assumes it).

Each part is inherited when a level leaves it unset: a speaker's override, then its zone's
rule, then the commune's (``broadcast_rules``); with no rule at all nothing is limited.
Emergencies (khẩn cấp) are never refused and play at their own volume.

**Communes (issue 20).** Each commune has its own commune-level rule (``BroadcastRule`` with no
zone or speaker, ``commune_id`` its commune, ``key`` ``commune:<id>``; the row migration 0018
kept under the old key ``commune`` is commune 1's, found by its ``commune_id`` like the others,
so no migration renames it). A zone's rule and a speaker's override follow their zone's and
node's commune: a commune user reads and sets only their commune's, and a speaker inherits the
rule of its own node's commune. A broadcast's targets are resolved within its commune (a
province broadcast: every commune), so one commune's broadcasts never count against another's
daily minutes.

:func:`refusal` is the one check: creating, editing and approving a broadcast
(``services/broadcasts.py``) and play-now (``services/plans.py``) call it, from the API, the web
pages and the demo seed alike, and :func:`set_rule` re-checks the approved broadcasts after a
rule changed (one that now breaks it goes back to draft, with the reason in its audit). The
plans (``services/plans.py``, run by the scheduler) take each node's volume from
:func:`volume_for`, so the level a speaker plays at follows the profile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Broadcast, BroadcastRule, Device, MediaItem, Node, Zone
from thanthien.hub.db.session import mark_changed
from thanthien.hub.roles import BROADCAST_RULE_EDITORS, Actor, require
from thanthien.hub.services import audit as admin_audit
from thanthien.hub.services.errors import Invalid, NotFound
from thanthien.hub.services.schedule import BroadcastSettings, Schedule, occurrences, parse_hhmm
from thanthien.hub.tenancy import Tenant, commune_for_new, reaches, visible_clause

log = logging.getLogger(__name__)

HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
COMMUNE = "commune"
PARTS = ("volume_profile", "daily_minutes", "slots")
PART_LABELS = {"volume_profile": "âm lượng theo giờ", "daily_minutes": "số phút mỗi ngày",
               "slots": "khung giờ được phát"}


class VolumeBand(BaseModel):
    """From ``start`` to ``end`` (local; an ``end`` before ``start`` runs past midnight) the
    loudest level allowed is ``volume`` percent."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(pattern=HHMM, description="HH:MM local.")
    end: str = Field(pattern=HHMM, description="HH:MM local; before start: past midnight.")
    volume: int = Field(ge=0, le=100, description="The loudest level (%) allowed in the band.")


class Slot(BaseModel):
    """A time a non-emergency broadcast may play: from ``start`` (local), ``minutes`` long."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(pattern=HHMM, description="HH:MM local.")
    minutes: int = Field(ge=1, le=1440)


class RuleSpec(BaseModel):
    """A level's rule; a part left ``null`` is inherited (speaker -> zone -> commune)."""

    model_config = ConfigDict(extra="forbid")

    volume_profile: list[VolumeBand] | None = Field(
        None, max_length=24, description="Bands of the day with their loudest level; [] none; null inherit.")
    daily_minutes: int | None = Field(
        None, ge=0, le=1440, description="Non-emergency minutes per local day at most; null inherit.")
    slots: list[Slot] | None = Field(
        None, max_length=12, description="The only times a non-emergency broadcast may play; [] any time; "
                                         "null inherit.")

    @field_validator("volume_profile")
    @classmethod
    def _bands_apart(cls, bands: list[VolumeBand] | None) -> list[VolumeBand] | None:
        for b in bands or []:
            if b.start == b.end:
                raise ValueError("a band must not start and end at the same time")
        return bands


@dataclass(frozen=True)
class Effective:
    """The rule a speaker plays by, each part from where it came (a Vietnamese label)."""

    volume_profile: tuple[VolumeBand, ...] = ()
    daily_minutes: int | None = None
    slots: tuple[Slot, ...] | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def limits(self) -> bool:
        return self.daily_minutes is not None or self.slots is not None

    def key(self) -> tuple[Any, ...]:
        return (tuple((b.start, b.end, b.volume) for b in self.volume_profile), self.daily_minutes,
                None if self.slots is None else tuple((s.start, s.minutes) for s in self.slots))


NO_RULE = Effective()


# -- reading --------------------------------------------------------------------------------
def _spec_of(row: BroadcastRule | None) -> RuleSpec:
    if row is None:
        return RuleSpec()
    return RuleSpec(volume_profile=row.volume_profile, daily_minutes=row.daily_minutes, slots=row.slots)


def _merge(levels: Iterable[tuple[str, RuleSpec]]) -> Effective:
    """The first level (most specific first) that sets a part gives it."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for label, spec in levels:
        for part in PARTS:
            value = getattr(spec, part)
            if part not in values and value is not None:
                values[part], sources[part] = value, label
    return Effective(volume_profile=tuple(values.get("volume_profile") or ()),
                     daily_minutes=values.get("daily_minutes"),
                     slots=tuple(values["slots"]) if values.get("slots") else None, sources=sources)


def is_commune_rule(row: BroadcastRule) -> bool:
    """A commune-level rule: ``commune:<id>``, or ``commune`` (commune 1's, from before communes)."""
    return row.zone_id is None and row.device_id is None and (row.key == COMMUNE
                                                              or row.key.startswith(COMMUNE + ":"))


@dataclass
class RuleBook:
    """Every rule, read once: what each speaker node plays by."""

    communes: dict[int | None, RuleSpec]
    """commune id -> its commune-level rule."""
    zones: dict[int, RuleSpec]
    speakers: dict[int, RuleSpec]
    zone_names: dict[int, str]
    node_speaker: dict[str, tuple[int, int | None, str]]
    """node id -> (speaker device id, its zone id, the device's label)."""
    zone_commune: dict[int, int | None] = field(default_factory=dict)
    node_commune: dict[str, int | None] = field(default_factory=dict)

    def commune_rule(self, commune_id: int | None) -> RuleSpec:
        return self.communes.get(commune_id) or RuleSpec()

    def for_zone(self, zone_id: int | None, *, commune_id: int | None = None) -> Effective:
        """A zone's rule (``None``: the commune-level rule of ``commune_id``)."""
        levels = []
        if zone_id is not None and zone_id in self.zones:
            levels.append((f"khu vực {self.zone_names.get(zone_id, zone_id)}", self.zones[zone_id]))
        commune = self.zone_commune.get(zone_id) if zone_id is not None else commune_id
        levels.append(("toàn xã", self.commune_rule(commune)))
        return _merge(levels)

    def for_node(self, node_id: str) -> Effective:
        commune = self.commune_rule(self.node_commune.get(node_id))
        speaker = self.node_speaker.get(node_id)
        if speaker is None:
            return _merge([("toàn xã", commune)])
        device_id, zone_id, label = speaker
        levels = []
        if device_id in self.speakers:
            levels.append((f"cụm loa {label}", self.speakers[device_id]))
        if zone_id is not None and zone_id in self.zones:
            levels.append((f"khu vực {self.zone_names.get(zone_id, zone_id)}", self.zones[zone_id]))
        levels.append(("toàn xã", commune))
        return _merge(levels)


def book(session: Session) -> RuleBook:
    rows = list(session.scalars(select(BroadcastRule).order_by(BroadcastRule.id)))
    communes: dict[int | None, RuleSpec] = {}
    for r in rows:
        if is_commune_rule(r) and r.commune_id is not None:
            communes.setdefault(r.commune_id, _spec_of(r))
    speakers: dict[str, tuple[int, int | None, str]] = {}
    for d in session.scalars(
        select(Device).join(Node, Node.id == Device.node_id)
        .where(Device.kind == "speaker", Device.retired_at.is_(None)).order_by(Device.id)
    ):
        speakers.setdefault(d.node_id, (d.id, d.zone_id, d.name or d.node_id))
    zones = list(session.scalars(select(Zone)))
    return RuleBook(
        communes=communes,
        zones={r.zone_id: _spec_of(r) for r in rows if r.zone_id is not None},
        speakers={r.device_id: _spec_of(r) for r in rows if r.device_id is not None},
        zone_names={z.id: z.name for z in zones},
        node_speaker=speakers,
        zone_commune={z.id: z.commune_id for z in zones},
        node_commune={n: c for n, c in session.execute(select(Node.id, Node.commune_id))},
    )


# -- the arithmetic (pure) ------------------------------------------------------------------
def _windows(start: str, end_or_minutes: str | int, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    begin = datetime.combine(day, parse_hhmm(start), tz)
    if isinstance(end_or_minutes, int):
        return begin, begin + timedelta(minutes=end_or_minutes)
    end_t: time = parse_hhmm(end_or_minutes)
    end_day = day if end_t > parse_hhmm(start) else day + timedelta(days=1)
    return begin, datetime.combine(end_day, end_t, tz)


def volume_cap(profile: Iterable[VolumeBand], at: datetime, duration_s: float, tz: ZoneInfo) -> int | None:
    """The lowest level of the bands ``[at, at + duration)`` overlaps, or ``None``."""
    local = at.astimezone(tz)
    end = local + timedelta(seconds=max(duration_s, 0.001))
    caps = []
    for band in profile:
        day = local.date() - timedelta(days=1)
        while day <= end.date():
            lo, hi = _windows(band.start, band.end, day, tz)
            if local < hi and end > lo:
                caps.append(band.volume)
                break
            day += timedelta(days=1)
    return min(caps) if caps else None


def volume_for(rule: Effective, *, volume: int, priority: str, at: datetime, duration_s: float,
               tz: ZoneInfo) -> int:
    """The level a speaker under ``rule`` plays an occurrence at: its own, or the profile's lower
    cap; an emergency keeps its own."""
    if priority == "emergency":
        return volume
    cap = volume_cap(rule.volume_profile, at, duration_s, tz)
    return volume if cap is None else min(volume, cap)


def in_slots(slots: Iterable[Slot], at: datetime, duration_s: float, tz: ZoneInfo) -> bool:
    """True when ``[at, at + duration)`` lies wholly inside one slot."""
    local = at.astimezone(tz)
    end = local + timedelta(seconds=max(duration_s, 0))
    for slot in slots:
        for day in (local.date() - timedelta(days=1), local.date()):
            lo, hi = _windows(slot.start, slot.minutes, day, tz)
            if lo <= local and end <= hi:
                return True
    return False


def slots_text(slots: Iterable[Slot], tz: ZoneInfo) -> str:
    out = []
    for s in slots:
        lo, hi = _windows(s.start, s.minutes, date(2026, 1, 1), tz)
        out.append(f"{lo:%H:%M}–{hi:%H:%M}")
    return ", ".join(out)


def _minutes(seconds: float) -> str:
    m = seconds / 60
    return f"{m:.0f}" if abs(m - round(m)) < 0.05 else f"{m:.1f}".replace(".", ",")


# -- the check ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """What is checked: a broadcast as it would be (a spec or a stored row)."""

    schedule: Schedule
    duration_s: float
    priority: str
    target_kind: str
    target_zones: tuple[str, ...]
    target_nodes: tuple[str, ...]
    broadcast_id: int | None = None
    """The stored broadcast it replaces (not counted twice), if any."""
    time_exception: bool = False
    """A leader's quiet-hours exception for this one broadcast (granted, or asked for on its
    draft): it may play outside the slots too, at the hour it was granted for (the chairman's
    greeting at giao thừa). Its minutes still count and its volume still follows the profile."""
    commune_id: int | None = None
    """The broadcast's commune: it targets that commune's speakers only (``None``: a province one)."""


def candidate_of(b: Broadcast, duration_s: float, *, broadcast_id: int | None = None,
                 exception_requested: bool = False) -> Candidate:
    """A broadcast row as a candidate (``broadcast_id``: the stored one an edit replaces;
    ``exception_requested``: its draft asks for a quiet-hours exception)."""
    from thanthien.hub.services.broadcasts import schedule_of

    return Candidate(schedule=schedule_of(b), duration_s=duration_s, priority=b.priority,
                     target_kind=b.target_kind, target_zones=tuple(b.target_zones or ()),
                     target_nodes=tuple(b.target_nodes or ()), broadcast_id=broadcast_id or b.id,
                     time_exception=exception_requested or b.quiet_exception_by is not None,
                     commune_id=b.commune_id)


def _horizon(c: Candidate, now: datetime, cfg: BroadcastSettings) -> datetime:
    days = cfg.rrule_check_days
    if c.schedule.kind == "holiday":
        days = max(days, 400)
    return now + timedelta(days=days)


def _local_days(ats: Iterable[datetime], duration_s: float, tz: ZoneInfo) -> dict[date, float]:
    out: dict[date, float] = {}
    for at in ats:
        d = at.astimezone(tz).date()
        out[d] = out.get(d, 0.0) + duration_s
    return out


def refusal(session: Session, c: Candidate, *, now: datetime, tz: ZoneInfo,
            cfg: BroadcastSettings, rules: RuleBook | None = None) -> str | None:
    """Why the broadcast ``c`` would break the rules of a speaker it targets (Vietnamese), or
    ``None``. Emergencies pass. The daily minutes count the approved broadcasts (play-now
    included, emergencies not) besides this one."""
    if c.priority == "emergency":
        return None
    from thanthien.hub.services.broadcasts import SpeakerCache

    rules = rules or book(session)
    speakers = SpeakerCache(session)
    targets = speakers.targets(c)
    groups: dict[tuple[Any, ...], tuple[Effective, list[str]]] = {}
    for node in targets:
        rule = rules.for_node(node)
        if rule.limits:
            groups.setdefault(rule.key(), (rule, []))[1].append(node)
    if not groups:
        return None
    horizon = _horizon(c, now, cfg)
    mine = occurrences(c.schedule, start=now, end=horizon, tz=tz, limit=5000)
    for rule, nodes in groups.values():
        where = _where(rule, nodes, "slots")
        if rule.slots is not None and not c.time_exception:
            for at in mine:
                if not in_slots(rule.slots, at, c.duration_s, tz):
                    return (f"Lịch phát ngoài khung giờ được phép của {where}: lần phát lúc "
                            f"{at.astimezone(tz):%H:%M %d/%m/%Y} (dài {_minutes(c.duration_s)} phút). "
                            f"Khung giờ được phép: {slots_text(rule.slots, tz)}; chỉ bản tin khẩn cấp "
                            f"được phát ngoài các khung giờ này.")
    if not any(rule.daily_minutes is not None for rule, _ in groups.values()):
        return None
    days = _local_days(mine, c.duration_s, tz)
    if not days:
        return None
    lo = datetime.combine(min(days), time(0), tz)
    hi = datetime.combine(max(days) + timedelta(days=1), time(0), tz)
    others = _approved_minutes(session, c, speakers, start=lo, end=hi, tz=tz)
    for rule, nodes in groups.values():
        if rule.daily_minutes is None:
            continue
        for day, seconds in sorted(days.items()):
            used = max((others.get(n, {}).get(day, 0.0) for n in nodes), default=0.0)
            if used + seconds > rule.daily_minutes * 60 + 0.5:
                return (f"Vượt số phút phát mỗi ngày của {_where(rule, nodes, 'daily_minutes')}: ngày "
                        f"{day:%d/%m/%Y} sẽ có {_minutes(used + seconds)} phút (đã có {_minutes(used)} phút, "
                        f"bản tin này {_minutes(seconds)} phút; tối đa {rule.daily_minutes} phút).")
    return None


def _where(rule: Effective, nodes: list[str], part: str) -> str:
    source = rule.sources.get(part, "toàn xã")
    return source if len(nodes) == 1 or not source.startswith("cụm loa") else f"{source} và các cụm loa khác"


def _approved_minutes(session: Session, c: Candidate, speakers: Any, *, start: datetime,
                      end: datetime, tz: ZoneInfo) -> dict[str, dict[date, float]]:
    """Seconds per node and local day of the approved, non-emergency broadcasts but ``c``'s own
    (``speakers``: a ``broadcasts.SpeakerCache``)."""
    from thanthien.hub.services.broadcasts import schedule_of

    out: dict[str, dict[date, float]] = {}
    durations = {sha: d for sha, d in session.execute(select(MediaItem.sha256, MediaItem.duration_s))}
    for b in session.scalars(select(Broadcast).where(Broadcast.status == "approved",
                                                     Broadcast.priority != "emergency")):
        if c.broadcast_id is not None and b.id == c.broadcast_id:
            continue
        duration = durations.get(b.media_sha256, 0.0)
        days = _local_days(occurrences(schedule_of(b), start=start, end=end, tz=tz, limit=5000), duration, tz)
        if not days:
            continue
        for node in speakers.targets(b):
            per = out.setdefault(node, {})
            for d, s in days.items():
                per[d] = per.get(d, 0.0) + s
    return out


def enforce(session: Session, c: Candidate, *, now: datetime, tz: ZoneInfo, cfg: BroadcastSettings) -> None:
    """:func:`refusal` as an :class:`Invalid`."""
    if (why := refusal(session, c, now=now, tz=tz, cfg=cfg)) is not None:
        raise Invalid(why)


# -- the calendar ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ZoneDay:
    zone_code: str
    zone_name: str
    minutes: dict[date, float]
    daily_minutes: int | None
    """The zone's cap (its rule or the commune's), if any."""


def zone_minutes(session: Session, *, viewer: Tenant, start: datetime, end: datetime,
                 tz: ZoneInfo) -> list[ZoneDay]:
    """Minutes each zone ``viewer`` reaches plays per local day in ``[start, end)``: the approved,
    non-emergency broadcasts (play-now included), as the daily cap counts them."""
    from thanthien.hub.services.broadcasts import SpeakerCache, Within, schedule_of

    cache = SpeakerCache(session)
    speakers = cache.of(Within(None))
    rules = book(session)
    zones = list(session.scalars(select(Zone).where(Zone.retired_at.is_(None),
                                                    visible_clause(viewer, Zone.commune_id))
                                 .order_by(Zone.code)))
    totals: dict[str, dict[date, float]] = {z.code: {} for z in zones}
    durations = {sha: d for sha, d in session.execute(select(MediaItem.sha256, MediaItem.duration_s))}
    for b in session.scalars(select(Broadcast).where(Broadcast.status == "approved",
                                                     Broadcast.priority != "emergency")):
        days = _local_days(occurrences(schedule_of(b), start=start, end=end, tz=tz, limit=5000),
                           durations.get(b.media_sha256, 0.0), tz)
        if not days:
            continue
        nodes = cache.targets(b)
        reached: set[str] = set().union(*(speakers[n] for n in nodes))
        for code in reached & set(totals):
            for d, s in days.items():
                totals[code][d] = totals[code].get(d, 0.0) + s / 60
    return [ZoneDay(z.code, z.name, totals[z.code], rules.for_zone(z.id).daily_minutes) for z in zones]


# -- editing --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    key: str
    label: str
    zone_id: int | None = None
    device_id: int | None = None
    commune_id: int | None = None
    """The commune the level is in (a commune rule's own; a zone's or a speaker's node's)."""


def scope(session: Session, *, viewer: Tenant, zone: str | None = None, node: str | None = None,
          commune: str | None = None) -> Scope:
    """The commune (neither zone nor node: ``viewer``'s, or for a province user the one named by
    its code, or the only one there is), a zone (its code) or a node's speaker (the node id);
    ``NotFound`` for another commune's zone or node."""
    if zone is not None:
        z = session.scalar(select(Zone).where(Zone.code == zone, visible_clause(viewer, Zone.commune_id)))
        if z is None:
            raise NotFound(f"Không có khu vực phát {zone}")
        return Scope(f"zone:{z.id}", f"khu vực {z.name}", zone_id=z.id, commune_id=z.commune_id)
    if node is not None:
        row = session.execute(
            select(Device, Node.commune_id).join(Node, Node.id == Device.node_id)
            .where(Device.node_id == node, Device.kind == "speaker", Device.retired_at.is_(None),
                   visible_clause(viewer, Node.commune_id)).order_by(Device.id)).first()
        if row is None:
            raise NotFound(f"Nút {node} không có cụm loa đang dùng")
        d, commune_id = row
        return Scope(f"speaker:{d.id}", f"cụm loa {d.name or node}", device_id=d.id, commune_id=commune_id)
    commune_id = commune_for_new(session, actor=viewer, requested=commune)
    return Scope(f"{COMMUNE}:{commune_id}", "toàn xã", commune_id=commune_id)


def commune_of(session: Session, viewer: Tenant) -> int | None:
    """The commune whose commune-level rule ``viewer`` is shown: theirs, or for a province user
    the only one there is (``None`` when there are several: they pick one)."""
    try:
        return commune_for_new(session, actor=viewer)
    except Invalid:
        return None


def _row_of(session: Session, where: Scope) -> BroadcastRule | None:
    if where.zone_id is None and where.device_id is None:  # the commune's: new key or the old one
        return session.scalar(
            select(BroadcastRule).where(BroadcastRule.zone_id.is_(None), BroadcastRule.device_id.is_(None),
                                        BroadcastRule.commune_id == where.commune_id,
                                        or_(BroadcastRule.key == where.key, BroadcastRule.key == COMMUNE))
            .order_by(BroadcastRule.id).limit(1))
    return session.scalar(select(BroadcastRule).where(BroadcastRule.key == where.key))


def get_rule(session: Session, where: Scope) -> RuleSpec:
    """A level's own rule (``where`` from :func:`scope`, which checked the reader's reach)."""
    return _spec_of(_row_of(session, where))


@dataclass(frozen=True)
class RuleChange:
    rule: RuleSpec
    back_to_draft: list[tuple[int, str, str]]
    """Approved broadcasts that break the new rule: (id, title, why), now drafts again."""


def set_rule(session: Session, *, actor: Actor, where: Scope, spec: RuleSpec, now: datetime, tz: ZoneInfo,
             cfg: BroadcastSettings) -> RuleChange:
    """Store a level's rule (admins; audited). Approved broadcasts that break it go back to
    draft with the reason; the plans follow (the speakers' volume too)."""
    require(actor, BROADCAST_RULE_EDITORS)
    if not reaches(actor, where.commune_id):
        raise NotFound("Không có quy định phát này")
    bands = [(b.start, b.end) for b in spec.volume_profile or []]
    if len(set(bands)) != len(bands):
        raise Invalid("Hai khoảng âm lượng trùng nhau.")
    row = _row_of(session, where)
    before = _spec_of(row).model_dump(mode="json")
    if row is None:
        row = BroadcastRule(key=where.key, zone_id=where.zone_id, device_id=where.device_id,
                            commune_id=where.commune_id)
        session.add(row)
    dumped = spec.model_dump(mode="json")
    row.volume_profile, row.daily_minutes, row.slots = (dumped["volume_profile"], dumped["daily_minutes"],
                                                        dumped["slots"])
    row.updated_at, row.updated_by = now, actor.username
    session.flush()
    back: list[tuple[int, str, str]] = []
    from thanthien.hub.services import broadcasts

    rules = book(session)
    durations = {sha: d for sha, d in session.execute(select(MediaItem.sha256, MediaItem.duration_s))}
    for b in session.scalars(select(Broadcast).where(Broadcast.status == "approved",
                                                     Broadcast.schedule_kind != "now",
                                                     Broadcast.priority != "emergency")):
        why = refusal(session, candidate_of(b, durations.get(b.media_sha256, 0.0)), now=now, tz=tz, cfg=cfg,
                      rules=rules)
        if why is not None:
            b.status, b.approved_by, b.approved_at, b.updated_at = "draft", None, None, now
            broadcasts.audit(session, broadcast=b, username=actor.username, action="rules_changed", now=now,
                             extra={"previous_status": "approved", "reason": why})
            back.append((b.id, b.title, why))
    admin_audit.record(session, actor=actor, action="broadcast.rules", subject=where.key, at=now,
                       details={"scope": where.label, **admin_audit.changes(before, dumped),
                                "back_to_draft": [i for i, _, _ in back]}, commune_id=where.commune_id)
    mark_changed(session, broadcasts.BROADCAST_CHANGES)
    log.info("broadcast rule %s set by %s; %d broadcast(s) back to draft", where.key, actor.username,
             len(back))
    return RuleChange(spec, back)


def parse_bands(text: str) -> list[VolumeBand]:
    """``05:30-06:30 60, 21:00-22:00 40`` (one band per line or comma) -> bands; Invalid else."""
    out = []
    for part in [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]:
        try:
            span, level = part.rsplit(" ", 1)
            start, end = (x.strip() for x in span.replace("–", "-").split("-"))
            out.append(VolumeBand(start=start, end=end, volume=int(level.rstrip("%"))))
        except ValueError:
            raise Invalid(f"Không hiểu khoảng âm lượng “{part}”: viết dạng 05:30-06:30 60.") from None
    return out


def parse_slots(text: str) -> list[Slot]:
    """``05:30 60, 17:00 60`` (start and minutes) -> slots; Invalid else."""
    out = []
    for part in [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]:
        try:
            start, minutes = part.split()
            out.append(Slot(start=start, minutes=int(minutes)))
        except ValueError:
            raise Invalid(f"Không hiểu khung giờ “{part}”: viết dạng 05:30 60 (giờ bắt đầu, số "
                          "phút).") from None
    return out


def bands_text(bands: Iterable[VolumeBand] | None) -> str:
    return ", ".join(f"{b.start}-{b.end} {b.volume}" for b in bands or [])


def slots_form_text(slots: Iterable[Slot] | None) -> str:
    return ", ".join(f"{s.start} {s.minutes}" for s in slots or [])
