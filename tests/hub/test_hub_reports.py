"""Summaries over many ratings agree with a count made another way (in Python, per press)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from thanthien.hub.db.models import Officer, Rating
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import rating_counts, reports
from thanthien.hub.services.ratings import RatingFilter

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def seed(db, n: int):
    """``n`` presses over a year, 4 counters, 6 officers (some presses without an officer),
    inserted as a database of an older hub holds them, then counted as the migration does."""
    rng = random.Random(20260302)
    start = datetime(2025, 12, 31, 17, 0, tzinfo=UTC)  # 00:00 on 1 Jan 2026 in Hà Nội
    with db.session() as s:
        officers = [Officer(code=f"cb-{i}", full_name=f"Cán bộ {i}", title="", commune_id=1)
                    for i in range(6)]
        s.add_all(officers)
        s.flush()
        ids = [o.id for o in officers] + [None]
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        rows.append({"node_id": "node-a", "event_id": uuid.UUID(int=rng.getrandbits(128)), "seq": i + 1,
                     "box": "box-1", "counter_code": f"quay-{rng.randint(1, 4)}",
                     "score": rng.choice((1, 2, 3, 3, 4, 4)),
                     "pressed_at": start + timedelta(seconds=rng.randrange(365 * 86400)), "received_at": now,
                     "officer_id": rng.choice(ids)})
    with db.engine.begin() as conn:
        for chunk in range(0, len(rows), 10_000):
            conn.execute(insert(Rating), rows[chunk:chunk + 10_000])
        rating_counts.rebuild(conn)
    return rows


def expected(rows, keyfunc, flt=lambda r: True):
    out: dict[tuple, Counter] = {}
    for r in rows:
        if flt(r):
            out.setdefault(keyfunc(r), Counter())[r["score"]] += 1
    return out


@pytest.mark.slow
def test_summary_by_officer_and_month_over_100000_ratings_is_exact(db):
    many = seed(db, 100_000)
    with db.session() as s:
        rows = reports.summarize(s, viewer=SYSTEM, group_by=["officer", "month"], flt=RatingFilter(),
                                 tz="Asia/Ho_Chi_Minh")
    got = {(r.key["officer_id"], r.key["month"]): Counter({k: v for k, v in r.counts.items() if v})
           for r in rows}
    want = expected(many, lambda r: (r["officer_id"], r["pressed_at"].astimezone(ZONE).strftime("%Y-%m")))
    assert got == want
    assert sum(r.total for r in rows) == 100_000


def test_summary_by_counter_and_quarter_within_a_period(db):
    many = seed(db, 20_000)
    start = datetime(2026, 3, 1, tzinfo=ZONE)
    end = datetime(2026, 9, 1, tzinfo=ZONE)
    with db.session() as s:
        rows = reports.summarize(s, viewer=SYSTEM, group_by=["counter", "quarter"],
                                 flt=RatingFilter(start=start, end=end),
                                 tz="Asia/Ho_Chi_Minh")
    got = {(r.key["counter"], r.key["quarter"]): Counter({k: v for k, v in r.counts.items() if v})
           for r in rows}

    def quarter(r):
        local = r["pressed_at"].astimezone(ZONE)
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"

    want = expected(many, lambda r: (r["counter_code"], quarter(r)), lambda r: start <= r["pressed_at"] < end)
    assert got == want


def test_satisfaction_index_is_the_scaled_mean_level():
    assert reports.satisfaction_index({4: 10, 3: 0, 2: 0, 1: 0}) == 100
    assert reports.satisfaction_index({4: 0, 3: 0, 2: 0, 1: 7}) == 0
    assert reports.satisfaction_index({4: 1, 3: 1, 2: 1, 1: 1}) == 50
    assert reports.satisfaction_index({4: 0, 3: 0, 2: 0, 1: 0}) is None


def test_weeks_follow_iso_weeks_in_local_time():
    # Sunday 2026-01-04 17:30 UTC is Monday 00:30 in Hà Nội: ISO week 2 there.
    local = datetime(2026, 1, 4, 17, 30, tzinfo=UTC).astimezone(ZONE)
    assert reports.period_label("week", local) == "2026-W02"
    assert reports.period_label("quarter", local) == "2026-Q1"
