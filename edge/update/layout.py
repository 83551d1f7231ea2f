"""Releases side by side under the update root::

    <root>/releases/<version>/venv/     its own virtual environment, installed offline from the bundle
    <root>/releases/<version>/manifest.json
    <root>/current -> releases/<version>  switched in one rename (``state.switch_link``)
    <root>/guard                         the kept release's start check (``guard.py``)
    <root>/update-state.json             the trial and the last outcome (``state.py``)
    <root>/staging/                      downloads and unpacked wheels, emptied after each try

The service runs ``<root>/current/venv/bin/thanthien edge run``. Two releases are kept: the one in
force and the one before it (to switch back to); older ones are removed once a new one is kept.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from thanthien import releases
from thanthien.edge.update.state import current_version

log = logging.getLogger(__name__)

KEEP = 2


class InstallError(Exception):
    """The release could not be installed; the message says why (reported to the hub)."""


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.releases = self.root / "releases"
        self.staging = self.root / "staging"

    def release_dir(self, version: str) -> Path:
        return self.releases / version

    def python(self, version: str) -> Path:
        return self.release_dir(version) / "venv" / "bin" / "python"

    @property
    def current(self) -> str | None:
        return current_version(self.root)

    def installed(self, version: str) -> bool:
        return (self.release_dir(version) / ".installed").exists()

    def versions(self) -> list[str]:
        if not self.releases.is_dir():
            return []
        return sorted(p.name for p in self.releases.iterdir() if (p / ".installed").exists())

    def install(
        self, bundle: Path, public_key: releases.Ed25519PublicKey, *, version: str, timeout_s: float = 600
    ) -> releases.Manifest:
        """Verify the bundle (signature, every digest) and install it in its own venv, offline."""
        wheels = self.staging / f"wheels-{version}"
        shutil.rmtree(wheels, ignore_errors=True)
        try:
            manifest = releases.verify(bundle, public_key, extract_to=wheels)
        except releases.BundleError:
            shutil.rmtree(wheels, ignore_errors=True)
            raise
        if manifest.version != version:
            shutil.rmtree(wheels, ignore_errors=True)
            raise releases.BundleError(
                f"the bundle holds release {manifest.version}, the hub offered {version}"
            )
        target = self.release_dir(version)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        try:
            self._venv(target / "venv", wheels, manifest, timeout_s)
            (target / "manifest.json").write_bytes(manifest.raw)
            (target / ".installed").write_text(version + "\n")
        except InstallError:
            shutil.rmtree(target, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(wheels, ignore_errors=True)
        return manifest

    def _venv(self, venv: Path, wheels: Path, manifest: releases.Manifest, timeout_s: float) -> None:
        base = getattr(sys, "_base_executable", None) or sys.executable
        with_pip = importlib.util.find_spec("pip") is None
        cmd = [base, "-m", "venv", *([] if with_pip else ["--without-pip"]), str(venv)]
        self._run(cmd, timeout_s, "making the release's venv")
        python = venv / "bin" / "python"
        files = sorted(str(wheels / f.name.removeprefix(releases.WHEELS)) for f in manifest.files)
        pip = (
            [str(python), "-m", "pip"] if with_pip else [sys.executable, "-m", "pip", "--python", str(python)]
        )
        self._run(
            [
                *pip,
                "install",
                "--quiet",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--disable-pip-version-check",
                *files,
            ],
            timeout_s,
            "installing the wheels offline",
        )
        done = self._run(
            [str(python), "-c", "import thanthien, thanthien.edge.agent; print(thanthien.__version__)"],
            timeout_s,
            "importing the new agent",
        )
        if done.strip() != manifest.version:
            raise InstallError(
                f"the installed agent says version {done.strip()!r}, the manifest {manifest.version}"
            )

    @staticmethod
    def _run(cmd: list[str], timeout_s: float, what: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
        env["PIP_NO_INDEX"] = "1"
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False, env=env, cwd="/"
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InstallError(f"{what}: {exc}") from None
        if done.returncode != 0:
            raise InstallError(f"{what} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return done.stdout

    def prune(self, keep: list[str]) -> list[str]:
        """Remove every release but ``keep`` (the one in force and the one before it)."""
        removed = []
        if not self.releases.is_dir():
            return removed
        for path in self.releases.iterdir():
            if path.name not in keep and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        return sorted(removed)
