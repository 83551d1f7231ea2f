"""A backup of one commune (issue 20): its rows and nothing of another commune's, restorable
into an empty database as a hub of its own."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.conftest import _clean
from hub.tenancy import walk
from hub.tenancy.test_tenancy_walk import _seed
from thanthien.hub.db.models import Base, Commune, Node, Zone
from thanthien.hub.db.ownership import RULES
from thanthien.hub.db.session import Database
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import communes
from thanthien.hub.services.backup import create_backup, restore_backup

pytestmark = pytest.mark.usefixtures("cheap_hashing")


def test_every_table_says_which_of_its_rows_a_commune_owns():
    assert set(RULES) == set(Base.metadata.tables)


@pytest.fixture
def seeded(ctx):
    with ctx.db.session() as s:
        s.scalar(select(Commune).where(Commune.code == "home")).name = "Thị trấn một"
        communes.create_commune(s, actor=SYSTEM, code="xb", name="Xã hai", now=ctx.clock())
        _seed(s, commune="home", prefix="xa", marker=walk.MARKER_A, now=ctx.clock())
        _seed(s, commune="xb", prefix="xb", marker=walk.MARKER_B, now=ctx.clock())
    return ctx


def test_a_commune_backup_holds_no_row_of_another_commune(seeded, tmp_path):
    summary = create_backup(seeded.db, data_dir=tmp_path, out=tmp_path / "xb.tar.gz", commune="xb")
    assert summary.rows["zones"] == 1 and summary.rows["nodes"] == 2
    restored = Database(f"sqlite:///{tmp_path / 'restored.db'}")
    try:
        restore_backup(restored, data_dir=tmp_path / "restored", archive=summary.path)
        with restored.engine.connect() as conn:
            assert walk.rows_of(conn, walk.MARKER_A) == {}
            assert walk.rows_of(conn, walk.MARKER_B) != {}
    finally:
        restored.dispose()


def test_a_commune_backup_restores_every_row_of_the_commune(seeded, tmp_path):
    with seeded.db.engine.connect() as conn:
        before = walk.rows_of(conn, walk.MARKER_B)
    summary = create_backup(seeded.db, data_dir=tmp_path, out=tmp_path / "xb.tar.gz", commune="xb")
    _clean(seeded.db)  # the same back end, empty, as a new hub for the commune would be
    with seeded.db.engine.begin() as conn:
        conn.execute(Commune.__table__.delete())
    restore_backup(seeded.db, data_dir=tmp_path / "restored", archive=summary.path)
    with seeded.db.engine.connect() as conn:
        assert walk.rows_of(conn, walk.MARKER_B) == before
        assert conn.scalar(select(func.count()).select_from(Zone)) == 1
        assert set(conn.scalars(select(Node.id))) == {"xb-loa", "xb-hop"}
