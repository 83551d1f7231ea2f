"""A small town for the UI tests, seeded through the hub's services: users of every role,
counters with an officer on duty, rating boxes, speakers, telemetry, alarms and presses
spread over today, last quarter and the two survey rounds (October and March).

The presses are returned too, so tests count what a page should show another way."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import cameras, health, ratings, registry, users
from thanthien.hub.web import periods
from thanthien.protocol.payloads import CameraHealth, NodeState, RatingEvent, Telemetry

TZ = "Asia/Ho_Chi_Minh"
PASSWORDS = {role: f"mat-khau-{role}-2026" for role in users.ROLES}
COUNTERS = {"quay-1": "Quầy Tư pháp – Hộ tịch", "quay-2": "Quầy Đất đai"}
FULL_NAMES = {"admin": "Quản trị viên", "officer": "Trần Văn Bình", "it": "Lò Văn Hùng",
              "leader": "Phạm Thị Hoa"}
CAMERA_REASON = "Hình ảnh không thay đổi trong 60 giây"
OFFICER = "Nguyễn Thị Lan"  # on duty at quay-1 the whole time; quay-2 has nobody rostered


@dataclass(frozen=True)
class Press:
    counter: str
    score: int
    at: datetime


@dataclass
class Town:
    presses: list[Press] = field(default_factory=list)
    seqs: dict[str, int] = field(default_factory=dict)

    def counts(self, *, start: datetime, end: datetime, counter: str | None = None) -> dict[int, int]:
        out = dict.fromkeys((4, 3, 2, 1), 0)
        for p in self.presses:
            if start <= p.at < end and (counter is None or p.counter == counter):
                out[p.score] += 1
        return out


def local_day_start(day: date) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(TZ))


def _telemetry(node: str, at: datetime, **over: object) -> Telemetry:
    values: dict[str, object] = dict(node=node, session=1, at=at, uptime_s=3600, agent_version="0.1.0",
                                     cpu_temp_c=48.0, load_1m=0.2, load_5m=0.2, load_15m=0.2, mem_used_pct=35,
                                     disk_used_pct=41, disk_free_mb=5120, outbox_depth=0, ignored_presses=0,
                                     clock_synced=True, clock_offset_ms=4.0)
    values.update(over)
    return Telemetry(**values)  # type: ignore[arg-type]


def state(node: str, value: str, at: datetime, session: int = 1) -> NodeState:
    return NodeState(node=node, state=value, session=session, at=at, agent_version="0.1.0",  # type: ignore[arg-type]
                     capabilities=["rating_box"])


def press(ctx: HubContext, town: Town, *, counter: str, score: int, at: datetime) -> None:
    """Store one press as the ingest would (node-a's box for quay-1, node-c's for quay-2)."""
    node = "node-a" if counter == "quay-1" else "node-c"
    town.seqs[node] = town.seqs.get(node, 0) + 1
    event = RatingEvent(event_id=uuid.uuid4(), node=node, seq=town.seqs[node], box=f"box-{counter}",
                        counter=counter, score=score, pressed_at=at)
    with ctx.db.session() as session:
        ratings.store_ratings(session, events=[event], now=ctx.clock())
    town.presses.append(Press(counter, score, at))


def _spread(ctx: HubContext, town: Town, period: periods.Period, plan: dict[str, dict[int, int]]) -> None:
    """Presses of ``plan`` (counter -> level -> count) spread over the period's days at 10:00 local."""
    days = (period.last - period.first).days + 1
    i = 0
    for counter, levels in plan.items():
        for score, n in levels.items():
            for _ in range(n):
                day = period.first + timedelta(days=(i * 7) % days)
                at = local_day_start(day) + timedelta(hours=10, minutes=i % 50)
                press(ctx, town, counter=counter, score=score, at=at)
                i += 1


def _registry(session: Session, now: datetime) -> None:
    for role, password in PASSWORDS.items():
        users.create_user(session, actor=SYSTEM, username=role, password=password, role=role, now=now,
                          full_name=FULL_NAMES[role])
    for code, name in COUNTERS.items():
        registry.create_counter(session, actor=SYSTEM, code=code, name=name)
    registry.create_zone(session, actor=SYSTEM, code="ban-na-hin", name="Bản Nà Hin")
    registry.create_zone(session, actor=SYSTEM, code="to-3", name="Tổ dân phố 3", kind="residential_group")
    nodes = {"node-a": ("Hộp đánh giá quầy 1", [("box-quay-1", "rating_box", "quay-1", None),
                                                ("cam-1", "camera", None, None)]),
             "node-b": ("Loa bản Nà Hin", [("loa-1", "speaker", None, "ban-na-hin")]),
             "node-c": ("Hộp đánh giá quầy 2", [("box-quay-2", "rating_box", "quay-2", None)]),
             "node-d": ("Loa tổ dân phố 3", [("loa-3", "speaker", None, "to-3")])}
    for node_id, (name, devices) in nodes.items():
        registry.register_node(session, actor=SYSTEM, node_id=node_id, name=name)
        for code, kind, counter, zone in devices:
            registry.upsert_device(session, actor=SYSTEM, node_id=node_id, code=code, kind=kind,
                                   counter=counter, zone=zone)
    officer = registry.create_officer(session, actor=SYSTEM, code="cb-lan", full_name=OFFICER,
                                      title="Công chức Tư pháp")
    registry.add_shift(session, actor=SYSTEM, officer_id=officer.id, counter="quay-1",
                       starts_at=now - timedelta(days=900), ends_at=now + timedelta(days=30))


def survey_years(today: date) -> tuple[periods.Period, periods.Period]:
    """The latest October/March pair that has fully passed."""
    year = today.year - 1 if today.month > 3 else today.year - 2
    return periods.month(year, 10, TZ), periods.month(year + 1, 3, TZ)


def seed(ctx: HubContext) -> Town:
    now = ctx.clock()
    town = Town()
    with ctx.db.session() as session:
        _registry(session, now)
        th, notify = ctx.thresholds, False
        for node in ("node-a", "node-b", "node-c", "node-d"):
            health.apply_node_state(session, state=state(node, "online", now - timedelta(days=1)),
                                    now=now - timedelta(days=1), notify=notify)
        for k in range(48, -1, -1):  # node-a: a sample every 30 minutes for a day, warming up
            at = now - timedelta(minutes=30 * k)
            health.record_telemetry(session, t=_telemetry("node-a", at, cpu_temp_c=45.0 + (48 - k) * 0.25,
                                                          outbox_depth=k % 5), now=at, thresholds=th,
                                    notify=notify)
        for node in ("node-b", "node-c", "node-d"):
            health.record_telemetry(session, t=_telemetry(node, now), now=now, thresholds=th, notify=notify)
        health.apply_node_state(session, state=state("node-d", "lost", now - timedelta(minutes=20)),
                                now=now - timedelta(minutes=20), notify=notify)
        frozen = now - timedelta(minutes=12)
        cameras.apply_health(session, health=CameraHealth(
            node="node-a", camera="cam-1", state="frozen", reason=CAMERA_REASON, since=frozen, at=now),
            now=now, alarm_after_s=300, tz=ZoneInfo(TZ), notify=notify)
    today = periods.today(now, TZ)
    start = local_day_start(today)
    plan = [("quay-1", 4), ("quay-1", 4), ("quay-1", 3), ("quay-1", 3), ("quay-1", 2), ("quay-1", 4),
            ("quay-2", 4), ("quay-2", 1)]
    for i, (counter, score) in enumerate(plan):  # today, between local midnight and now
        press(ctx, town, counter=counter, score=score, at=start + (now - start) * (i + 1) / (len(plan) + 1))
    _spread(ctx, town, periods.quarter_of(today, TZ, back=1),
            {"quay-1": {4: 10, 3: 5, 2: 3, 1: 2}, "quay-2": {4: 4, 3: 4, 2: 1, 1: 1}})
    october, march = survey_years(today)
    _spread(ctx, town, october, {"quay-1": {4: 3, 3: 3, 2: 2, 1: 2}, "quay-2": {4: 2, 3: 2, 2: 2, 1: 2}})
    _spread(ctx, town, march, {"quay-1": {4: 7, 3: 2, 2: 1}, "quay-2": {4: 3, 3: 3, 2: 1, 1: 1}})
    return town
