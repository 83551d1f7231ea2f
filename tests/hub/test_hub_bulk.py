"""The driver path of the ingest's hot inserts (hub/db/bulk.py), on SQLite and PostgreSQL, stores what
SQLAlchemy would: the same value in every column of a rating and a telemetry sample, and the rows it
reports as new are exactly the ones it inserted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, text

from thanthien.hub.db import bulk
from thanthien.hub.db.models import Rating, TelemetrySample


@pytest.fixture
def sqlite_ctx(ctx):
    if not ctx.db.is_sqlite:
        pytest.skip("the driver path is SQLite's")
    return ctx


def _rating(i: int, at: datetime, **over) -> dict:
    row = {"node_id": f"node-{i % 3}", "event_id": uuid.uuid4(), "seq": i, "box": "box-1",
           "counter_code": "quay-1", "score": 1 + i % 4, "pressed_at": at,
           "received_at": at + timedelta(seconds=1),
           "officer_id": None, "clock_uncertain": (None, True, False)[i % 3]}
    row.update(over)
    return row


def _stored(session, table) -> list[tuple]:
    names = [c.name for c in table.c if c.name != "id"]
    query = text(f"SELECT {', '.join(names)} FROM {table.name} ORDER BY id")
    return [tuple(r) for r in session.execute(query)]


AT = (datetime(2026, 3, 1, 2, 3, 4, tzinfo=UTC),  # no microseconds: SQLAlchemy still writes .000000
      datetime(2026, 3, 1, 9, 0, 0, 120, tzinfo=timezone(timedelta(hours=7))),  # another zone
      datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))


def test_ratings_inserted_through_the_driver_are_stored_as_sqlalchemy_stores_them(ctx):
    rows = [_rating(i, AT[i % 3]) for i in range(9)]
    with ctx.db.session() as s:
        s.execute(insert(Rating.__table__), rows)
        by_orm = _stored(s, Rating.__table__)
        s.execute(text("DELETE FROM ratings"))
        bulk.insert_new(s, Rating.__table__, rows, ["node_id", "event_id"])
        assert _stored(s, Rating.__table__) == by_orm


def test_telemetry_inserted_through_the_driver_is_stored_as_sqlalchemy_stores_it(ctx):
    rows = [{"node_id": "node-a", "session": 2, "at": AT[i], "received_at": AT[i], "uptime_s": 10 * i,
             "agent_version": "0.1.0", "cpu_temp_c": 48.5, "load_1m": 0.2, "mem_used_pct": 31,
             "disk_used_pct": 40, "disk_free_mb": 9000, "outbox_depth": i, "ignored_presses": 0,
             "clock_synced": bool(i % 2), "clock_offset_ms": None if i == 1 else 1.5, "clock_trusted": None,
             "hub_offset_ms": 3.25, "held_broadcasts": 0} for i in range(3)]
    with ctx.db.session() as s:
        s.execute(insert(TelemetrySample.__table__), rows)
        by_orm = _stored(s, TelemetrySample.__table__)
        s.execute(text("DELETE FROM telemetry"))
        bulk.insert(s, TelemetrySample.__table__, rows)
        assert _stored(s, TelemetrySample.__table__) == by_orm


def test_only_the_rows_not_stored_yet_are_inserted_and_reported(ctx):
    first = [_rating(i, AT[0]) for i in range(4)]
    again = [*first[1:3], _rating(9, AT[1])]
    with ctx.db.session() as s:
        assert len(bulk.insert_new(s, Rating.__table__, first, ["node_id", "event_id"])) == 4
        new = bulk.insert_new(s, Rating.__table__, again, ["node_id", "event_id"])
        assert new == {(again[2]["node_id"], again[2]["event_id"])}
        assert s.scalar(text("SELECT count(*) FROM ratings")) == 5


def test_a_statement_never_carries_more_parameters_than_sqlite_takes(sqlite_ctx, monkeypatch):
    monkeypatch.setattr(bulk, "SQLITE_MAX_PARAMS", 25)  # 2 rows of 10 columns a statement
    rows = [_rating(i, AT[0]) for i in range(5)]
    with sqlite_ctx.db.session() as s:
        new = bulk.sqlite_insert_new(s, Rating.__table__, rows, ["node_id", "event_id"])
        assert sorted(new) == sorted((r["node_id"], r["event_id"].hex) for r in rows)


def test_a_naive_time_is_refused_as_sqlalchemy_refuses_it(ctx):
    with ctx.db.session() as s, pytest.raises(ValueError, match="naive datetime"):
        bulk.insert(s, Rating.__table__, [_rating(1, datetime(2026, 1, 1))])


def test_rows_updated_through_the_driver_are_stored_as_sqlalchemy_stores_them(ctx):
    from sqlalchemy import bindparam, update

    table = Rating.__table__
    rows = [_rating(i, AT[0]) for i in range(3)]
    changes = [{"score": 4 - i, "pressed_at": AT[i], "clock_uncertain": (True, None, False)[i]}
               for i in range(3)]
    with ctx.db.session() as s:
        s.execute(insert(table), rows)
        ids = [r[0] for r in s.execute(text("SELECT id FROM ratings ORDER BY id"))]
        s.execute(update(table).where(table.c.id == bindparam("b_id")).values(
            {k: bindparam(f"b_{k}") for k in changes[0]}),
            [{"b_id": i, **{f"b_{k}": v for k, v in c.items()}} for i, c in zip(ids, changes, strict=True)])
        by_orm = _stored(s, table)
        s.execute(text("DELETE FROM ratings"))
        s.execute(insert(table), [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
        bulk.update_by_id(s, table, [{"id": i, **c} for i, c in zip(ids, changes, strict=True)])
        assert _stored(s, table) == by_orm
