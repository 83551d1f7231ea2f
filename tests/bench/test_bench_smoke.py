"""Each benchmark runs at its tiniest size and writes a well-formed result (not a speed test)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from thanthien.bench.common import percentile
from thanthien.bench.runner import NAMES, run

# Benchmarks time what they run: with pytest-xdist they share the chaos drills' worker, one at
# a time, so no two of them measure each other.
pytestmark = pytest.mark.xdist_group("serial")

MACHINE_KEYS = {"cpu_model", "cores", "ram_mb", "python", "sqlite", "versions", "git_commit"}


def _check_result(path: Path, name: str, size: str = "tiny") -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["name"] == name and data["size"] == size
    assert data["machine"].keys() >= MACHINE_KEYS
    assert data["machine"]["cores"] >= 1
    assert len(data["load"]["loadavg_start"]) == 3 and len(data["load"]["loadavg_end"]) == 3
    assert data["figures"] and data["baseline"] and data["ratio"]
    for section in ("figures", "baseline", "ratio"):
        for key, value in data[section].items():
            assert isinstance(value, int | float) and math.isfinite(value), (section, key, value)
            # a bare baseline may measure nothing at all (0 % CPU of an idle process)
            assert value > 0 or (section == "baseline" and value == 0), (section, key, value)
    assert data["targets"], "every benchmark states its targets"
    for target in data["targets"]:
        assert {"figure", "target", "value", "unit", "met", "why"} <= target.keys()
    assert data["method"].strip()
    return data


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_benchmark_writes_a_well_formed_result(name: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    assert run(name, size="tiny", results_dir=results, work_dir=tmp_path / "work") == 0
    _check_result(results / f"{name}.json", name)
    summary = (results / "RESULTS.md").read_text(encoding="utf-8")
    assert f"`thanthien bench {name}`" in summary


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_province_drill_at_its_quick_size_drains_every_node_and_loses_or_doubles_nothing(
        tmp_path: Path) -> None:
    results = tmp_path / "results"
    assert run("province", size="quick", results_dir=results, work_dir=tmp_path / "work") == 0
    data = _check_result(results / "province.json", "province", size="quick")
    ledger = data["params"]["ledger"]
    for kind in ("rating", "playback"):
        assert ledger[f"{kind}_rows"] == ledger[f"{kind}_held"] > 0, ledger
        assert ledger[f"{kind}_lost"] == ledger[f"{kind}_doubled"] == ledger[f"{kind}_extra"] == 0, ledger
    params = data["params"]
    assert params["hub"]["drained"] is True
    speakers = params["nodes"] - params["offices"]
    assert params["deliveries"] == {"finished": speakers * params["occurrences"]}  # every report applied
    whole = next(t for t in data["targets"] if t["figure"].startswith("ledger"))
    assert whole["met"] is True


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50, 99, 100)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
