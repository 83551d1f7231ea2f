"""`thanthien demo` as a user runs it: it starts, prints the URLs and logins, the API answers,
and SIGINT (Ctrl-C) leaves no process behind; the town seed is idempotent."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from sim_helpers import descendants, gone
from sqlalchemy import func
from sqlalchemy import select as sql_select

from support import private_name, wait_until
from thanthien.broker import free_port
from thanthien.hub.db.models import Officer, Rating, RosterException, RosterPattern, User
from thanthien.hub.db.session import Database
from thanthien.hub.roles import SYSTEM
from thanthien.sim import town
from thanthien.sim.citizens import LOCAL_TZ
from thanthien.sim.demo import ROLES
from thanthien.sim.seed import Login, rounds, seed_town

REPO = Path(__file__).resolve().parents[2]


def _read_until(proc: subprocess.Popen[str], pattern: str, timeout: float) -> tuple[dict[str, str], str]:
    """Stdout up to a line matching ``pattern`` (read on a thread); returns the printed logins
    and the whole text."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if re.search(pattern, line):
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout), f"{pattern!r} not printed within {timeout} s; output:\n{''.join(lines)}"
    text = "".join(lines)
    return dict(re.findall(r"^\s+\w+\s+(\w+) / (\S+)", text, re.M)), text


@pytest.mark.slow
def test_demo_starts_answers_and_ctrl_c_leaves_no_process(tmp_path):
    hub_port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "thanthien.cli", "demo", "--data", str(tmp_path / "demo"), "--broker-port",
         str(free_port()), "--hub-port", str(hub_port), "--history-days", "2", "--no-stdin",
         "--log-level", "WARNING"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        logins, banner = _read_until(proc, r"^Type `help`", timeout=90)
        assert set(logins) == {username for _role, username, _name, _commune in ROLES}
        base = f"http://127.0.0.1:{hub_port}/api/v1"

        def headers_of(username: str) -> dict[str, str]:
            form = {"username": username, "password": logins[username]}
            token = httpx.post(f"{base}/auth/login", data=form, timeout=10).json()["access_token"]
            return {"Authorization": f"Bearer {token}"}

        province, headers = headers_of("tinh"), headers_of("kythuat")

        def all_online() -> bool:
            nodes = httpx.get(f"{base}/nodes", headers=province, timeout=10).json()
            return {n["id"] for n in nodes if n["state"] == "online"} >= set(town.node_ids())

        assert wait_until(all_online, timeout=30, every=0.5)
        town_nodes = {n["id"] for n in httpx.get(f"{base}/nodes", headers=headers, timeout=10).json()}
        assert town_nodes == {town.OFFICE_NODE, *(z.node for z in town.ZONES)}  # not the neighbour's

        def cameras_reported() -> bool:
            cams = httpx.get(f"{base}/cameras", headers=headers, timeout=10).json()
            return {c["camera"] for c in cams if c["state"] == "ok"} == {code for code, _ in town.CAMERAS}

        assert wait_until(cameras_reported, timeout=30, every=0.5)
        if shutil.which("espeak-ng") and shutil.which("ffmpeg"):  # the seeded bulletins are TTS
            titles = {b["title"] for b in httpx.get(f"{base}/broadcasts", headers=headers, timeout=10).json()
                      if b["status"] == "approved"}
            assert "Bản tin buổi sáng" in titles
            assert re.search(r"^Next broadcast: (Bản tin buổi|Lời chúc Tết)", banner, re.M), banner
        children = descendants(proc.pid)
        assert len(children) >= 2  # the broker and the hub
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert wait_until(lambda: all(gone(c) for c in children), timeout=10), \
            [c for c in children if not gone(c)]
    finally:
        if proc.poll() is None:  # the test failed: stop the demo the way a user would
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _counts(db: Database) -> list[int]:
    with db.session() as s:
        return [int(s.scalar(sql_select(func.count()).select_from(m)) or 0)
                for m in (Rating, Officer, RosterPattern, RosterException, User)]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    import psycopg

    admin = os.environ.get("THANTHIEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = admin.replace("postgresql+psycopg://", "postgresql://")
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {admin} ({str(exc).strip()[:100]})")
    name = private_name("thanthien_sim_seed")
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def test_town_seed_is_idempotent(db_url):
    db = Database(db_url)
    db.migrate()
    now = datetime(2026, 4, 20, 3, 0, tzinfo=UTC)
    logins = [Login("admin", "admin", "admin-password-1", "Quản trị")]
    try:
        first = seed_town(db, now=now, logins=logins, start=datetime(2026, 3, 2, tzinfo=UTC))
        counts = _counts(db)
        second = seed_town(db, now=now, logins=logins, start=datetime(2026, 3, 2, tzinfo=UTC))
        again = _counts(db)
        assert first.seeded and not second.seeded
        assert counts == again
        officers = len(town.OFFICERS) + len(town.NEIGHBOUR_OFFICERS)
        assert counts[0] == first.ratings > 0 and counts[1] == officers
    finally:
        db.dispose()


def test_history_reaches_back_to_the_october_round_before_the_last_march():
    assert rounds(datetime(2026, 11, 25, tzinfo=UTC)) == (date(2025, 10, 1), date(2026, 3, 1))
    assert rounds(datetime(2026, 2, 10, tzinfo=UTC)) == (date(2024, 10, 1), date(2025, 3, 1))


def test_seeded_history_shows_the_march_round_better_than_october(tmp_path):
    from thanthien.hub.services.ratings import RatingFilter
    from thanthien.hub.services.reports import summarize

    db = Database(f"sqlite:///{tmp_path / 'rounds.db'}")
    db.migrate()
    now = datetime(2026, 4, 6, 3, 0, tzinfo=UTC)
    try:
        report = seed_town(db, now=now, logins=[])
        assert report.start is not None and report.start.astimezone(LOCAL_TZ).date() == date(2025, 10, 1)
        with db.session() as s:
            months = {r.key["month"]: r for r in summarize(s, viewer=SYSTEM, group_by=["month"],
                                                           flt=RatingFilter(), tz="Asia/Ho_Chi_Minh")}
            officers = summarize(s, viewer=SYSTEM, group_by=["officer"], flt=RatingFilter(),
                                 tz="Asia/Ho_Chi_Minh")
        assert months["2025-10"].total > 1000 and months["2026-03"].total > 1000
        assert months["2026-03"].index > months["2025-10"].index + 5
        assert {r.key["officer"] for r in officers} == {o.full_name for o in town.OFFICERS}
    finally:
        db.dispose()


def test_seed_takes_over_a_user_that_already_exists(tmp_path):
    from thanthien.hub.services import users
    from thanthien.protocol.payloads import utc_now

    db = Database(f"sqlite:///{tmp_path / 'taken.db'}")
    db.migrate()
    try:
        with db.session() as s:
            users.create_user(s, actor=SYSTEM, username="admin", password="older-password", role="officer",
                              now=utc_now())
            s.commit()
        seed_town(db, now=datetime(2026, 4, 20, 3, 0, tzinfo=UTC), start=datetime(2026, 4, 13, tzinfo=UTC),
                  logins=[Login("admin", "admin", "the-demo-password", "Quản trị")])
        with db.session() as s:
            user = users.authenticate(s, username="admin", password="the-demo-password")
            assert user is not None and user.role == "admin"
    finally:
        db.dispose()



def test_seeded_presses_go_to_the_officer_the_weekly_roster_names(tmp_path):
    from thanthien.sim.citizens import LOCAL_TZ

    db = Database(f"sqlite:///{tmp_path / 'roster.db'}")
    db.migrate()
    counter = town.COUNTERS[0].code
    first, second = (o.code for o in town.OFFICERS if o.counter == counter)
    try:
        seed_town(db, now=datetime(2026, 4, 20, 3, 0, tzinfo=UTC), logins=[],
                  start=datetime(2026, 3, 30, tzinfo=UTC))
        with db.session(write=False) as s:
            codes = {o.id: o.code for o in s.scalars(sql_select(Officer))}
            rows = s.execute(sql_select(Rating.pressed_at, Rating.officer_id)
                             .where(Rating.counter_code == counter)).all()
    finally:
        db.dispose()
    staffed = {(at.astimezone(LOCAL_TZ).isoweekday(), codes.get(officer)) for at, officer in rows}
    assert staffed == {(1, first), (2, second), (3, first), (4, second), (5, first)}
