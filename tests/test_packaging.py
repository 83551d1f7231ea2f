"""Every Python package folder is listed in pyproject.toml, so a wheel ships all of it."""

from __future__ import annotations

import tomllib

from thanthien.paths import PROJECT_ROOT


def test_every_package_folder_is_declared():
    cfg = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(cfg["packages"])
    found = set()
    for name, folder in cfg["package-dir"].items():
        base = PROJECT_ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            if "__pycache__" in rel.parts:
                continue
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found == declared, f"undeclared: {found - declared}, missing: {declared - found}"
