"""Bundles: the command line signs and verifies; the hub refuses an unsigned, re-signed or changed
bundle and stores nothing; a node refuses one and installs nothing."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from releases.release_helpers import BASE, GOOD
from thanthien import releases
from thanthien.cli import main
from thanthien.edge.update.layout import Layout
from thanthien.hub.roles import ActingUser
from thanthien.hub.services import releases as release_service
from thanthien.hub.services.errors import Invalid

pytestmark = pytest.mark.xdist_group("releases")
IT = ActingUser(username="kythuat", role="it")


def _rewrite(src: Path, dst: Path, *, drop: str | None = None, change: str | None = None) -> Path:
    """A copy of the bundle without one member or with one member's bytes changed."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for member in tin.getmembers():
            if member.name == drop:
                continue
            data = tin.extractfile(member).read()
            if member.name == change:
                data = data[:-1] + bytes([data[-1] ^ 1])
            member.size = len(data)
            tout.addfile(member, io.BytesIO(data))
    return dst


@pytest.fixture
def changed(kit, tmp_path) -> Path:
    wheel = next(
        f.name
        for f in releases.verify(kit.bundles[GOOD], kit.key.public_key()).files
        if "pydantic_core" in f.name
    )
    return _rewrite(kit.bundles[GOOD], tmp_path / "changed.tar", change=wheel)


@pytest.fixture
def unsigned(kit, tmp_path) -> Path:
    return _rewrite(kit.bundles[GOOD], tmp_path / "unsigned.tar", drop=releases.SIGNATURE)


def test_cli_verify_accepts_the_signed_bundle(kit, capsys):
    assert main(["release", "verify", "--public-key", str(kit.public_key_path), str(kit.bundles[GOOD])]) == 0
    assert f'"version": "{GOOD}"' in capsys.readouterr().out


def test_cli_verify_refuses_a_changed_file(kit, changed, capsys):
    assert main(["release", "verify", "--public-key", str(kit.public_key_path), str(changed)]) == 2
    assert "does not match its digest" in capsys.readouterr().err


def test_cli_sign_makes_an_unsigned_bundle_verify(kit, unsigned):
    assert main(["release", "sign", "--key", str(kit.private_key_path), str(unsigned)]) == 0
    assert releases.verify(unsigned, kit.key.public_key()).version == GOOD


def _upload(ctx, kit, path: Path):
    with ctx.db.session() as s, path.open("rb") as f:
        return release_service.upload(
            s,
            actor=IT,
            data=f,
            store=ctx.settings.releases_dir,
            key_path=kit.public_key_path,
            now=ctx.clock(),
        )


@pytest.fixture
def ctx(tmp_path):
    from hub.hub_helpers import Clock, hub_settings

    from thanthien.hub.context import HubContext
    from thanthien.hub.db.session import Database

    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    db.migrate()
    yield HubContext(
        settings=hub_settings(tmp_path, releases={"dir": str(tmp_path / "bundles")}), db=db, clock=Clock()
    )
    db.dispose()


@pytest.mark.parametrize("kind", ["unsigned", "changed", "other key"])
def test_hub_refuses_a_bad_bundle_and_stores_nothing(ctx, kit, unsigned, changed, tmp_path, kind):
    path = {"unsigned": unsigned, "changed": changed}.get(kind)
    if path is None:
        other = releases.generate_key()[0]
        path = tmp_path / "other.tar"
        path.write_bytes(kit.bundles[GOOD].read_bytes())
        releases.sign(path, releases.load_private(other))
    with pytest.raises(Invalid, match="bị từ chối"):
        _upload(ctx, kit, path)
    with ctx.db.session(write=False) as s:
        assert release_service.list_releases(s) == []
    assert not any(p.suffix == ".tar" for p in (tmp_path / "bundles").iterdir())


def test_hub_keeps_a_signed_bundle(ctx, kit):
    release = _upload(ctx, kit, kit.bundles[GOOD])
    assert (release.version, release.sha256) == (GOOD, releases.bundle_digest(kit.bundles[GOOD]))
    assert release_service.bundle_path(ctx.settings.releases_dir, release.sha256).is_file()


def test_node_refuses_a_changed_bundle_and_installs_nothing(kit, changed, tmp_path):
    layout = Layout(tmp_path / "node")
    with pytest.raises(releases.BundleError, match="does not match its digest"):
        layout.install(changed, kit.key.public_key(), version=GOOD)
    assert layout.versions() == []
    assert not layout.release_dir(GOOD).exists()


def test_node_refuses_an_unsigned_bundle(kit, unsigned, tmp_path):
    with pytest.raises(releases.BundleError, match="not signed"):
        Layout(tmp_path / "node").install(unsigned, kit.key.public_key(), version=GOOD)


def test_node_refuses_a_bundle_of_another_version_than_offered(kit, tmp_path):
    with pytest.raises(releases.BundleError, match="the hub offered"):
        Layout(tmp_path / "node").install(kit.bundles[GOOD], kit.key.public_key(), version=BASE)


def test_first_install_from_a_bundle_points_current_at_it_and_writes_the_guard(kit, tmp_path):
    """What ``scripts/install.sh edge --bundle`` runs (``python3 -m thanthien.edge.update.install``)."""
    import subprocess
    import sys

    from thanthien.edge.update.state import current_version

    root = tmp_path / "opt"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "thanthien.edge.update.install",
            "--root",
            str(root),
            "--bundle",
            str(kit.bundles[BASE]),
            "--public-key",
            str(kit.public_key_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert current_version(root) == BASE
    assert str(root / "releases" / BASE / "venv" / "bin" / "python") in (root / "guard").read_text()
    version = subprocess.run(
        [str(root / "current" / "venv" / "bin" / "thanthien"), "release", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version.returncode == 0


def test_first_install_refuses_a_changed_bundle_and_leaves_nothing(kit, changed, tmp_path):
    import subprocess
    import sys

    root = tmp_path / "opt"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "thanthien.edge.update.install",
            "--root",
            str(root),
            "--bundle",
            str(changed),
            "--public-key",
            str(kit.public_key_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2
    assert "does not match its digest" in done.stderr
    assert not (root / "current").exists() and not (root / "releases").exists()
