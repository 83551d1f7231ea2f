"""Revision 0011 on SQLite and PostgreSQL: the one-off shifts of the old roster table become
one-off days (``extra`` exceptions) with their ids, and the roster goes on from there."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from hub.test_hub_migrations import _fresh_url
from thanthien.hub.db import migrate
from thanthien.hub.db.session import Database
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import registry

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _at(hour: int) -> str:
    return T0.replace(hour=hour).strftime("%Y-%m-%d %H:%M:%S+00:00")


def test_one_off_shifts_become_one_off_days_with_their_ids_and_new_ones_follow(db, tmp_path, request):
    fresh = Database(_fresh_url(db, tmp_path, request))
    try:
        migrate.upgrade(fresh.engine, "0010")
        with fresh.engine.begin() as conn:
            conn.execute(text("INSERT INTO counters (id, code, name) VALUES (1, 'quay-1', 'Quầy 1')"))
            conn.execute(text("INSERT INTO officers (id, code, full_name, title) "
                              "VALUES (1, 'cb-lan', 'Lan', '')"))
            for shift_id, start, end in ((4, 1, 5), (9, 6, 9)):
                conn.execute(text("INSERT INTO roster (id, officer_id, counter_id, starts_at, ends_at) "
                                  "VALUES (:id, 1, 1, :s, :e)"),
                             {"id": shift_id, "s": _at(start), "e": _at(end)})
        fresh.migrate()
        with fresh.session() as s:
            shifts = [(e.id, e.kind, e.officer_id, e.starts_at, e.ends_at)
                      for e in registry.list_roster(s, viewer=SYSTEM, counter="quay-1")]
            added = registry.add_shift(s, actor=SYSTEM, officer_id=1, counter="quay-1",
                                       starts_at=T0.replace(hour=10), ends_at=T0.replace(hour=11)).id
        assert shifts == [(4, "extra", 1, T0.replace(hour=1), T0.replace(hour=5)),
                          (9, "extra", 1, T0.replace(hour=6), T0.replace(hour=9))]
        assert added == 10
    finally:
        fresh.dispose()
