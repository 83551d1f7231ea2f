"""requirements.lock keeps up with pyproject.toml: every dependency the project declares is
pinned there at a version its range allows (else run ``make lock``)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    return {canonicalize_name(name): version
            for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", text, re.M)}


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs.extend(extra)
    return [Requirement(s) for s in specs]


def test_every_declared_dependency_is_pinned_in_the_lock_within_its_range():
    pins = _pins()

    def pinned(r: Requirement) -> bool:
        version = pins.get(canonicalize_name(r.name))
        return version is not None and r.specifier.contains(version, prereleases=True)

    stale = [str(r) for r in _declared() if not pinned(r)]
    assert stale == [], f"not pinned within its range in requirements.lock: {stale}; run make lock"


def test_every_pin_in_the_lock_carries_a_hash():
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n", 6)[-1])
    unhashed = [b.split(" ", 1)[0] for b in blocks if "==" in b and "--hash=sha256:" not in b]
    assert unhashed == []
