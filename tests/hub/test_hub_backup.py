"""Backup and restore: every table and the media library survive a round trip, on SQLite and
PostgreSQL; a restore refuses what it cannot do safely."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.conftest import _clean
from hub.hub_helpers import incoming, rating, rating_msg, telemetry
from thanthien.hub.db.models import Base, Node, Rating
from thanthien.hub.db.session import Database
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import alarms, registry, users
from thanthien.hub.services.backup import BackupError, create_backup, restore_backup
from thanthien.hub.settings import RegistrySection
from thanthien.protocol import Topics

T = Topics()


def seed(ctx) -> None:
    with ctx.db.session() as s:
        registry.apply_declarations(s, registry=RegistrySection(  # the box the ratings come from
            counters=[{"code": "quay-1", "name": "Quầy 1"}],
            nodes=[{"id": "node-a",
                    "devices": [{"code": "box-1", "kind": "rating_box", "counter": "quay-1"}]}]))
        registry.register_node(s, actor=SYSTEM, node_id="node-a", name="Bộ phận một cửa")
        users.create_user(s, actor=SYSTEM, username="chu-tich", password="mat-khau-123", role="leader",
                          now=ctx.clock())
        alarms.raise_alarm(s, kind="disk_full", subject="node-a", severity="warning", now=ctx.clock(),
                           notify=False, message="Ổ đĩa gần đầy", details={"pct": 93.5})
    IngestWorker(ctx).process([rating_msg(rating(seq=i, score=1 + i % 4), ctx.clock()) for i in range(1, 31)]
                              + [incoming(T.telemetry("node-a"), telemetry().to_bytes(), ctx.clock()),
                                 incoming(T.rating("node-a"), b"\xff not json", ctx.clock())])


def dump(db) -> dict[str, list[tuple]]:
    with db.engine.connect() as conn:
        return {t.name: sorted(tuple(map(repr, r)) for r in conn.execute(select(t)))
                for t in Base.metadata.sorted_tables}


@pytest.fixture
def media(tmp_path: Path) -> Path:
    data_dir = tmp_path / "hub"
    sha = "ab" + "0" * 62
    (data_dir / "media" / "ab").mkdir(parents=True)
    (data_dir / "media" / "ab" / f"{sha}.wav").write_bytes(b"RIFF fake audio")
    return data_dir


def test_round_trip_restores_every_row_and_media_file(ctx, media, tmp_path):
    seed(ctx)
    before = dump(ctx.db)
    assert len(before["ratings"]) == 30 and len(before["dead_letters"]) == 1
    summary = create_backup(ctx.db, data_dir=media, out=tmp_path / "b.tar.gz")
    assert summary.rows["ratings"] == 30 and summary.media_files == 1
    _clean(ctx.db)
    restored_dir = tmp_path / "restored"
    restore_backup(ctx.db, data_dir=restored_dir, archive=tmp_path / "b.tar.gz")
    assert dump(ctx.db) == before
    assert (restored_dir / "media" / "ab" / ("ab" + "0" * 62 + ".wav")).read_bytes() == b"RIFF fake audio"


def test_restored_database_keeps_taking_new_rows(ctx, media, tmp_path):
    seed(ctx)
    create_backup(ctx.db, data_dir=media, out=tmp_path / "b.tar.gz")
    _clean(ctx.db)
    restore_backup(ctx.db, data_dir=tmp_path / "r", archive=tmp_path / "b.tar.gz")
    IngestWorker(ctx).process([rating_msg(rating(seq=99), ctx.clock())])
    with ctx.db.session() as s:
        ids = s.scalars(select(Rating.id)).all()
    assert len(ids) == 31 and len(set(ids)) == 31


def test_restore_refuses_a_database_that_holds_data(ctx, media, tmp_path):
    seed(ctx)
    create_backup(ctx.db, data_dir=media, out=tmp_path / "b.tar.gz")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(ctx.db, data_dir=tmp_path / "r", archive=tmp_path / "b.tar.gz")


def _rewrite(archive: Path, out: Path, edit) -> Path:
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            member, data = edit(member, data)
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return out


def test_restore_refuses_another_schema_revision(ctx, media, tmp_path):
    create_backup(ctx.db, data_dir=media, out=tmp_path / "b.tar.gz")

    def old_revision(member, data):
        if member.name == "manifest.json":
            manifest = json.loads(data)
            manifest["revision"] = "0000"
            data = json.dumps(manifest).encode()
        return member, data

    bad = _rewrite(tmp_path / "b.tar.gz", tmp_path / "old.tar.gz", old_revision)
    with pytest.raises(BackupError, match="schema revision 0000"):
        restore_backup(ctx.db, data_dir=tmp_path / "r", archive=bad)


def test_restore_refuses_media_paths_outside_the_media_directory(ctx, media, tmp_path):
    create_backup(ctx.db, data_dir=media, out=tmp_path / "b.tar.gz")

    def escape(member, data):
        if member.name.startswith("media/"):
            member.name = "media/../../escaped.wav"
        return member, data

    bad = _rewrite(tmp_path / "b.tar.gz", tmp_path / "evil.tar.gz", escape)
    with pytest.raises(BackupError, match="outside the media directory"):
        restore_backup(ctx.db, data_dir=tmp_path / "r", archive=bad)
    assert not (tmp_path / "escaped.wav").exists()


def test_restore_of_something_that_is_not_a_backup_is_a_clear_error(ctx, tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    with pytest.raises(BackupError, match="cannot read"):
        restore_backup(ctx.db, data_dir=tmp_path / "r", archive=junk)


def test_command_line_round_trip_into_a_new_database(tmp_path, capsys):
    from hub.e2e import write_toml
    from thanthien.cli import main

    def config(name: str) -> Path:
        return write_toml(tmp_path / f"{name}.toml", {
            "hub": {"data_dir": str(tmp_path / name)},
            "database": {"url": f"sqlite:///{tmp_path / name}.db"},
            "http": {"secret_key": "test-secret-key-0123456789"}})

    old, new = config("old"), config("new")
    assert main(["hub", "migrate", "--config", str(old)]) == 0
    db = Database(f"sqlite:///{tmp_path / 'old'}.db")
    with db.session() as s:
        registry.register_node(s, actor=SYSTEM, node_id="loa-ban-na", name="Cụm loa bản Na")
    db.dispose()
    archive = tmp_path / "hub.tar.gz"
    assert main(["hub", "backup", "--config", str(old), "--out", str(archive)]) == 0
    assert main(["hub", "restore", "--config", str(new), str(archive)]) == 0
    assert "restored" in capsys.readouterr().out
    assert main(["hub", "restore", "--config", str(new), str(archive)]) == 2
    assert "not empty" in capsys.readouterr().err
    db = Database(f"sqlite:///{tmp_path / 'new'}.db")
    with db.session() as s:
        assert s.scalar(select(Node.name)) == "Cụm loa bản Na"
    db.dispose()
