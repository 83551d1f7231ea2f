"""Runs benchmarks by name and renders ``bench/RESULTS.md`` from the result files."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

from thanthien.bench.common import DATA_DIR, RESULTS_DIR, Options, Result
from thanthien.bench.summary import write_summary

log = logging.getLogger(__name__)

NAMES = ("ingest", "press_to_commit", "start_skew", "fleet_scale", "edge_footprint", "reports", "province",
         "live_latency")


def run(name: str, *, size: str = "default", results_dir: Path | None = None,
        work_dir: Path | None = None) -> int:
    results_dir = results_dir or RESULTS_DIR
    opts = Options(size=size, results_dir=results_dir, work_dir=work_dir or DATA_DIR)
    names = NAMES if name == "all" else (name,)
    failed = []
    for bench in names:
        module = importlib.import_module(f"thanthien.bench.{bench}")
        try:
            result: Result = module.run(opts)
        except Exception:
            log.exception("benchmark %s failed", bench)
            failed.append(bench)
            continue
        log.info("%s written", result.name)
    summary = write_summary(results_dir, results_dir.parent / "RESULTS.md" if results_dir == RESULTS_DIR
                            else results_dir / "RESULTS.md")
    print(f"\nresults: {results_dir}  summary: {summary}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


def load_results(results_dir: Path) -> list[dict]:
    out = []
    for name in NAMES:
        path = results_dir / f"{name}.json"
        if path.exists():
            out.append(json.loads(path.read_text(encoding="utf-8")))
    return out
