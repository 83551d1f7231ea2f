"""hub/README.md describes the hub as it is on disk."""

from __future__ import annotations

import re
from pathlib import Path

HUB = Path(__file__).resolve().parents[2] / "hub"


def _layout() -> str:
    text = (HUB / "README.md").read_text(encoding="utf-8")
    return text.split("## Layout", 1)[1].split("\n## ", 1)[0]


def test_the_layout_table_names_every_module_of_the_hub():
    layout = _layout()
    named = set(re.findall(r"`([\w/*.]+?)(?:\.py)?`", layout)) | set(re.findall(r"\b(\w+)\b", layout))
    modules = sorted(p.relative_to(HUB) for p in HUB.rglob("*.py")
                     if p.name != "__init__.py" and "migrations" not in p.parts)
    missing = [str(m) for m in modules if m.stem not in named]
    assert missing == [], f"hub/README.md's layout does not name: {missing}"


def test_the_layout_table_names_no_module_that_is_gone():
    paths = [p for p in re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", _layout()) if not p.startswith("tests/")]
    gone = [p for p in paths if not (HUB / p).exists() and not any(HUB.rglob(Path(p).name))]
    assert gone == []
