"""What every benchmark shares: the machine description, load sampling, percentiles, the
result record, its JSON file and the printed table."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import platform
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from thanthien.paths import PROJECT_ROOT

log = logging.getLogger(__name__)

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
DATA_DIR = PROJECT_ROOT / "var" / "bench"

PRELOADED = ("thanthien.hub.runtime", "thanthien.bench.runner")
"""What the benchmarks' child processes are forked with already imported (:func:`child_processes`)."""


def child_processes() -> BaseContext:
    """How a benchmark starts its child processes (the hub, load generators, node fleets):
    forked from a server process that imported the hub and the benchmarks once (multiprocessing's
    ``forkserver``). Spawned children imported them again each, 2 to 10 s of CPU a hub process
    on a 2-core machine, which the test suite's benchmark smoke runs paid some twenty times.
    Like spawned ones, the children start without the parent's threads or connections, and a
    child's CPU counts from its fork, not from its imports."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOADED))
    return ctx


@dataclass(frozen=True)
class Options:
    """How a benchmark is run: ``quick`` is the smoke size, ``tiny`` the test-suite size."""

    size: str = "default"  # "default" | "quick" | "tiny"
    work_dir: Path = DATA_DIR
    results_dir: Path = RESULTS_DIR

    def pick(self, default: Any, quick: Any, tiny: Any) -> Any:
        return {"default": default, "quick": quick, "tiny": tiny}[self.size]


@dataclass
class Target:
    figure: str
    target: str
    value: float | None
    unit: str
    met: bool | None
    why: str = ""


@dataclass
class Result:
    name: str
    title: str
    size: str
    figures: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    ratio: dict[str, float] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    notes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- the machine -----------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _command_first_line(args: list[str]) -> str | None:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else None


def git_commit() -> str | None:
    out = _command_first_line(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"])
    return out if out and len(out) == 40 else None


def machine() -> dict[str, Any]:
    mosquitto = None
    for path in ("/usr/sbin/mosquitto", "mosquitto"):
        mosquitto = _command_first_line([path, "-h"])
        if mosquitto:
            break
    return {
        "host": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_mb": _ram_mb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "mosquitto": mosquitto,
        "versions": {d: _version(d) for d in ("thanthien", "paho-mqtt", "sqlalchemy", "pydantic",
                                              "psycopg", "gpiozero")},
        "git_commit": git_commit(),
    }


# -- load ------------------------------------------------------------------------------------
def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


class LoadWatch:
    """Load averages at the start and end, and how busy the whole machine was in between
    (in cores: 1.0 = one core fully used, by anyone)."""

    def __init__(self) -> None:
        self.start_load = os.getloadavg()
        self.start_ticks = _cpu_ticks()
        self.t0 = time.monotonic()

    def finish(self) -> dict[str, Any]:
        busy0, total0 = self.start_ticks
        busy1, total1 = _cpu_ticks()
        cores = os.cpu_count() or 1
        share = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        return {"loadavg_start": [round(x, 2) for x in self.start_load],
                "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                "machine_busy_cores": round(share * cores, 2), "cores": cores}


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children) from /proc."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in parts[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- statistics ------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return float(ordered[k])


def wait_for(predicate: Callable[[], bool], timeout: float, every: float = 0.02) -> bool:
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        tick.wait(every)
    return True


# -- output ----------------------------------------------------------------------------------
def run_measured(name: str, title: str, opts: Options, body: Callable[[Result], None]) -> Result:
    """Run ``body`` with the machine and the load recorded around it, then write the file."""
    result = Result(name=name, title=title, size=opts.size, machine=machine(),
                    started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    watch = LoadWatch()
    body(result)
    result.load = watch.finish()
    result.duration_s = round(time.monotonic() - watch.t0, 1)
    if result.load["loadavg_start"][0] > result.load["cores"]:
        result.notes.append(
            f"The machine was loaded when this ran (load average {result.load['loadavg_start'][0]} "
            f"on {result.load['cores']} cores): other work competed for the CPU.")
    write_result(result, opts.results_dir)
    print(describe(result))
    if result.details:
        print("\n".join(["", *result.details]))
    print(flush=True)
    return result


def write_result(result: Result, results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{result.name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    if value is None:
        return "-"
    return str(value)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe(result: Result) -> str:
    """The printed table of one result."""
    out = [f"== {result.title} ({result.name}, size {result.size}, {result.duration_s} s) =="]
    rows = [[k, v, result.baseline.get(k), result.ratio.get(k)] for k, v in result.figures.items()]
    rows += [[k, None, v, result.ratio.get(k)] for k, v in result.baseline.items() if k not in result.figures]
    out.append(table(rows, ["figure", "measured", "baseline", "ratio"]))
    if result.targets:
        out.append("")
        out.append(table([[t.figure, t.target, t.value, t.unit, _verdict(t.met)] for t in result.targets],
                         ["target", "wanted", "measured", "unit", "met"]))
    load = result.load
    out.append(f"load average {load.get('loadavg_start')} -> {load.get('loadavg_end')}, machine busy "
               f"{load.get('machine_busy_cores')} of {load.get('cores')} cores")
    return "\n".join(out)


def _verdict(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "n/a"}[met]
