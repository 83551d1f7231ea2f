"""Seeding the demo town's history into the hub's database, through the hub's services.

What is seeded, once (everything in one transaction; a second call finds the officers and
changes nothing):

* the registry of :mod:`thanthien.sim.town` (site, zones, counters, nodes and devices);
* the officers and their weekly duty roster: at each counter its first officer works
  Monday, Wednesday and Friday, its second Tuesday and Thursday, 07:00–17:30, from the start
  of the history on; next week the first officer of quầy 1 takes Wednesday off and the
  second stands in (leave and a swap, so the roster page shows both);
* a user per role (admin, officer, it, leader);
* with the hub's settings, three approved broadcasts rendered with the hub's Vietnamese TTS
  (the morning and afternoon bulletins on working days, the chairman's greeting on the first
  day of Tết) to every speaker, unless espeak-ng or ffmpeg is missing (then a warning);
* ratings from the citizen model (office hours, holidays, the counter's score mix moving
  from its October round to its March round) at the office node, stored with
  ``services.ratings.store_ratings`` so each is attributed to the officer on duty.

The history starts on 1 October of the last survey cycle whose March round is over (at
least six months back), so that the reports can compare the October and the March rounds.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Officer, Rating
from thanthien.hub.db.session import Database
from thanthien.hub.roles import LEADER, OFFICER, SYSTEM, ActingUser
from thanthien.hub.services import ratings, registry, roster, users
from thanthien.hub.settings import RegistrySection
from thanthien.protocol.payloads import RatingEvent
from thanthien.sim import town
from thanthien.sim.citizens import LOCAL_TZ, CitizenModel

if TYPE_CHECKING:
    from thanthien.hub.settings import HubSettings

log = logging.getLogger(__name__)

VISITS_PER_HOUR = 4.0
BATCH = 2000
SHIFT = (time(7, 0), time(17, 30))
WEEKLY = ((1, 3, 5), (2, 4))
"""The weekdays of a counter's first and second officer."""


@dataclass(frozen=True)
class Login:
    role: str
    username: str
    password: str
    full_name: str
    commune: str | None = None  # the commune's code; None: a province account


@dataclass(frozen=True)
class SeedReport:
    seeded: bool
    ratings: int = 0
    shifts: int = 0
    start: datetime | None = None


def rounds(now: datetime) -> tuple[date, date]:
    """The October and March survey rounds (first days) of the last cycle whose March is over."""
    local = now.astimezone(LOCAL_TZ).date()
    march_year = local.year if local.month >= 4 else local.year - 1
    return date(march_year - 1, 10, 1), date(march_year, 3, 1)


def history_start(now: datetime) -> datetime:
    october, _march = rounds(now)
    start = min(datetime.combine(october, time(0), LOCAL_TZ), now - timedelta(days=183))
    return start.astimezone(UTC)


def progress(at: datetime, now: datetime) -> float:
    """0 during the October round, 1 from the March round on, linear in between."""
    october, march = rounds(now)
    a = datetime.combine(october + timedelta(days=14), time(0), LOCAL_TZ)
    b = datetime.combine(march + timedelta(days=14), time(0), LOCAL_TZ)
    return min(max((at - a) / (b - a), 0.0), 1.0)


def is_seeded(session: Session) -> bool:
    return session.scalar(select(Officer).where(Officer.code == town.OFFICERS[0].code)) is not None


def seed_town(db: Database, *, now: datetime, logins: list[Login], start: datetime | None = None,
              seed: int = 1, settings: HubSettings | None = None) -> SeedReport:
    """Seed once; returns what was done (``seeded=False`` when the town was already there)."""
    start = start or history_start(now)
    with db.session() as session:
        if is_seeded(session):
            _logins(session, logins, now)  # logins the demo has added since it was seeded
            return SeedReport(seeded=False)
        registry.apply_declarations(session, registry=RegistrySection(**town.registry_declarations()))
        officers = _officers(session)
        shifts = _roster(session, officers, start, now)
        _logins(session, logins, now)
        count = _ratings(session, start, now, seed)
        if settings is not None:
            _broadcasts(session, settings, now, approver=_approver(logins))
            _dossiers(session, settings, now, logins)
        session.commit()
    log.info("town seeded: %d ratings since %s, %d shifts, %d users", count, start.date(), shifts,
             len(logins))
    return SeedReport(seeded=True, ratings=count, shifts=shifts, start=start)


BROADCASTS = (
    ("Bản tin buổi sáng", "weekdays", "06:30", [],
     "Đài truyền thanh thị trấn Mường Ảng xin kính chào bà con. Sau đây là bản tin buổi sáng. "
     "Bộ phận một cửa Ủy ban nhân dân thị trấn làm việc từ bảy giờ ba mươi đến mười một giờ ba mươi "
     "và từ mười ba giờ ba mươi đến mười bảy giờ các ngày trong tuần. Xin cảm ơn bà con đã lắng nghe."),
    ("Bản tin buổi chiều", "weekdays", "17:15", [],
     "Đài truyền thanh thị trấn Mường Ảng thông báo: bà con chú ý phòng chống cháy rừng trong mùa khô, "
     "không đốt nương khi trời hanh khô và gió lớn. Xin cảm ơn bà con."),
    ("Lời chúc Tết của Chủ tịch UBND thị trấn", "holiday", "06:30", ["tet_1"],
     "Nhân dịp năm mới, thay mặt Ủy ban nhân dân thị trấn Mường Ảng, xin kính chúc bà con các bản "
     "và các tổ dân phố một năm mới mạnh khỏe, an khang, hạnh phúc."),
)


def _logins(session: Session, logins: list[Login], now: datetime) -> None:
    """A user per login; one that already exists (a hub made by hand in the same directory)
    gets the demo password and role, so the printed logins work."""
    from thanthien.hub.db.models import User

    for login in logins:
        user = session.scalar(select(User).where(User.username == login.username))
        if user is None:
            users.create_user(session, actor=SYSTEM, username=login.username, password=login.password,
                              role=login.role, full_name=login.full_name, now=now, commune=login.commune)
        else:
            users.update_user(session, actor=SYSTEM, user_id=user.id, role=login.role, active=True,
                              password=login.password)


def _approver(logins: list[Login]) -> str:
    return next((x.username for x in logins if x.role == "leader"), "demo")


def _broadcasts(session: Session, settings: HubSettings, now: datetime, *, approver: str) -> None:
    from thanthien.hub.services import broadcasts, media_items
    from thanthien.hub.services.errors import ServiceError
    from thanthien.hub.services.tts import TtsRequest

    tz = ZoneInfo(settings.hub.timezone)
    lib = media_items.library(settings.hub.data_dir, settings.media)
    for title, kind, at, holidays, text in BROADCASTS:
        officer = _town("canbo", OFFICER, session)
        try:
            media = media_items.add_tts(session, lib=lib, settings=settings.tts,
                                        request=TtsRequest(text=text), title=title, username="demo",
                                        commune_id=officer.commune_id, now=now)
            spec = broadcasts.BroadcastSpec(
                title=title, media_sha256=media.sha256, schedule_kind=kind, local_time=at, holidays=holidays,
                weekdays=[1, 2, 3, 4, 5] if kind == "weekdays" else [],
                priority="priority" if kind == "holiday" else "normal")
            b = broadcasts.create_broadcast(session, spec=spec, actor=officer,
                                            now=now, tz=tz, cfg=settings.broadcasts)
            session.flush()
            # the made-up history has the demo's leader hear each seeded bulletin through once (the
            # listen-through a real approver does by playing it on the broadcast's page)
            media_items.record_fetch(session, sha256=media.sha256, username=approver,
                                     now=now - timedelta(seconds=media.duration_s))
            media_items.record_listened(session, actor=_town(approver, LEADER, session), sha256=media.sha256,
                                        now=now)
            broadcasts.approve_broadcast(session, broadcast_id=b.id, actor=_town(approver, LEADER, session),
                                         now=now, tz=tz, cfg=settings.broadcasts)
        except ServiceError as exc:
            log.warning("broadcast %r not seeded: %s", title, exc)


def _town(username: str, role: str, session: Session, user_id: int = 0) -> ActingUser:
    """One of the town's people, of the town's commune."""
    from thanthien.hub.tenancy import commune_by_code

    return ActingUser(username, role, user_id, commune_id=commune_by_code(session, town.COMMUNE).id)


def issue_speaker_tokens(db: Database, *, now: datetime) -> dict[str, str]:
    """A fresh media token for every speaker node of the town (the old ones stop working)."""
    from thanthien.hub.services import media_items

    with db.session() as session:
        tokens = {z.node: media_items.issue_node_token(session, actor=SYSTEM, node_id=z.node, now=now)
                  for z in town.ZONES}
        session.commit()
    return tokens


def _officers(session: Session) -> dict[str, list[int]]:
    """The town's officers (and the neighbour's, who have no roster in the demo)."""
    by_counter: dict[str, list[int]] = {}
    for o in town.OFFICERS:
        row = registry.create_officer(session, actor=SYSTEM, code=o.code, full_name=o.full_name,
                                      title=o.title, commune=town.COMMUNE)
        by_counter.setdefault(o.counter, []).append(row.id)
    for o in town.NEIGHBOUR_OFFICERS:
        registry.create_officer(session, actor=SYSTEM, code=o.code, full_name=o.full_name, title=o.title,
                                commune=town.NEIGHBOUR)
    return by_counter


def _roster(session: Session, officers: dict[str, list[int]], start: datetime, now: datetime) -> int:
    """The weekly pattern of every counter and next Wednesday's leave and swap: rows written."""
    tz = str(LOCAL_TZ)
    first = start.astimezone(LOCAL_TZ).date()
    hours = SHIFT[0].strftime("%H:%M"), SHIFT[1].strftime("%H:%M")
    rows = 0
    for counter in town.COUNTERS:
        for officer_id, weekdays in zip(officers[counter.code], WEEKLY, strict=False):
            roster.apply(session, roster.new_pattern(
                session, actor=SYSTEM, counter=counter.code, officer_id=officer_id, weekdays=weekdays,
                starts=hours[0], ends=hours[1], valid_from=first, tz=tz), actor=SYSTEM)
            rows += 1
    today = now.astimezone(LOCAL_TZ).date()
    wednesday = today + timedelta(days=7 - today.weekday() + 2)
    away, stands_in = officers[town.COUNTERS[0].code][:2]
    begins, ends = roster.local_span(wednesday, None, hours[0], hours[1], tz)
    roster.apply(session, roster.new_exception(
        session, actor=SYSTEM, kind="leave", officer_id=away, counter=None, starts_at=begins, ends_at=ends,
        note="Nghỉ phép năm", tz=tz), actor=SYSTEM)
    roster.apply(session, roster.new_exception(
        session, actor=SYSTEM, kind="swap", officer_id=stands_in, counter=town.COUNTERS[0].code,
        starts_at=begins, ends_at=ends, note="Trực thay", tz=tz), actor=SYSTEM)
    return rows + 2


def _months(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    local = start.astimezone(LOCAL_TZ)
    cursor = local
    out = []
    while cursor < end:
        first = cursor.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (first + timedelta(days=32)).replace(day=1)
        out.append((cursor.astimezone(UTC), min(nxt.astimezone(UTC), end)))
        cursor = nxt
    return out


def _ratings(session: Session, start: datetime, now: datetime, seed: int) -> int:
    rng = random.Random(seed)
    seq = int(session.scalar(select(func.max(Rating.seq)).where(Rating.node_id == town.OFFICE_NODE)) or 0)
    boxes = {c.code: c.box for c in town.COUNTERS}
    batch: list[RatingEvent] = []
    total = 0
    for i, (a, b) in enumerate(_months(start, now)):
        middle = a + (b - a) / 2
        model = CitizenModel(counters={c.code: c.mix_at(progress(middle, now)) for c in town.COUNTERS},
                             visits_per_hour=VISITS_PER_HOUR, seed=seed * 1000 + i)
        for visit in model.visits(a, b):
            seq += 1
            batch.append(RatingEvent(event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                                     node=town.OFFICE_NODE, seq=seq, box=boxes[visit.counter],
                                     counter=visit.counter, score=visit.score, pressed_at=visit.at))
            if len(batch) >= BATCH:
                total += _store(session, batch)
                batch = []
    if batch:
        total += _store(session, batch)
    return total


def _store(session: Session, batch: list[RatingEvent]) -> int:
    received = batch[-1].pressed_at + timedelta(seconds=2)
    return ratings.store_ratings(session, events=batch, now=received).stored_count


# -- dossiers and their notices (issue 17) ---------------------------------------------------
DOSSIERS = (  # code, procedure, citizen, mobile, counter, officer, due in hours, events after "received"
    ("000.00.12.H15-261201-0001", "Chứng thực bản sao từ bản chính", "Lò Văn Minh", "0912 000 101", "quay-1",
     "cb-lo-thi-hoa", 4, [("result_ready", "")]),
    ("000.00.12.H15-261201-0002", "Đăng ký khai sinh", "Quàng Thị Én", "0388 000 102", "quay-1",
     "cb-lo-thi-hoa", 48, [("supplement", "ban sao CCCD cua cha me")]),
    ("000.00.12.H15-261201-0003", "Cấp giấy chứng nhận quyền sử dụng đất", "Cà Văn Páo", "0868 000 103",
     "quay-2", "cb-quang-van-thanh", 2, []),
    ("000.00.12.H15-261201-0004", "Xác nhận hộ nghèo", "Lường Thị Xuân", "0706 000 104", "quay-3",
     "cb-luong-thi-mai", 72, []),
)


def _dossiers(session: Session, settings: HubSettings, now: datetime, logins: list[Login]) -> None:
    """A few dossiers at the counters, with their notices queued (the demo's dummy modem sends
    them); the officer login handles the first two (it sees their numbers in full)."""
    from thanthien.hub.db.models import User
    from thanthien.hub.services import dossiers

    tz = ZoneInfo(settings.hub.timezone)
    officer_login = next((x.username for x in logins if x.role == OFFICER), None)
    user = session.scalar(select(User).where(User.username == officer_login)) if officer_login else None
    officers = {o.code: o for o in session.scalars(select(Officer))}
    if user is not None:
        officers[town.OFFICERS[0].code].user_id = user.id
    actor = _town(officer_login or "canbo", OFFICER, session, user.id if user else 0)
    for code, procedure, citizen, phone, counter, officer, due_h, events in DOSSIERS:
        d = dossiers.create(session, actor=actor, code=code, procedure=procedure, citizen_name=citizen,
                            phone=phone, counter=counter, officer_id=officers[officer].id,
                            due_at=now + timedelta(hours=due_h), source="counter", now=now, tz=tz,
                            cfg=settings.sms)
        for kind, note in events:
            dossiers.record_event(session, actor=actor, dossier=d, kind=kind, note=note, key=None, now=now,
                                  tz=tz, cfg=settings.sms)
