"""``bench/RESULTS.md``: the latest result of every benchmark, its targets and the machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from thanthien.bench.common import fmt

ORDER = ("ingest", "press_to_commit", "start_skew", "fleet_scale", "edge_footprint", "reports", "province",
         "live_latency")

HEADER = """# Benchmark results

Written by `thanthien bench NAME|all` (`make bench`); each section is the latest run of one
benchmark, and `bench/results/<name>.json` holds its full record (parameters, per-variant
figures, machine, load). Every figure sits beside a baseline measured in the same run, and
the ratio between them is the number to compare across machines: absolute figures depend on
the machine and on what else ran on it (the load averages and how busy the whole machine was
are recorded for that reason). Reproduce with `thanthien bench NAME` (`--quick` for a smaller
smoke size).
"""


def _verdict(met: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "n/a"}[met]


def _section(r: dict[str, Any]) -> list[str]:
    m, load = r["machine"], r["load"]
    out = [f"## {r['title']}", "",
           f"`thanthien bench {r['name']}` · size {r['size']} · {r['started_at']} · {r['duration_s']} s · "
           f"commit `{(m.get('git_commit') or '?')[:10]}`", ""]
    out.append("| figure | measured | baseline | ratio |")
    out.append("|---|---|---|---|")
    for k, v in r["figures"].items():
        out.append(f"| {k} | {fmt(v)} | {fmt(r['baseline'].get(k))} | {fmt(r['ratio'].get(k))} |")
    for k, v in r["baseline"].items():
        if k not in r["figures"]:
            out.append(f"| {k} | - | {fmt(v)} | {fmt(r['ratio'].get(k))} |")
    out.append("")
    if r["targets"]:
        out.append("| target | wanted | measured | verdict | why |")
        out.append("|---|---|---|---|---|")
        for t in r["targets"]:
            value = f"{fmt(t['value'])} {t['unit']}".strip()
            out.append(f"| {t['figure']} | {t['target']} | {value} | {_verdict(t['met'])} | {t['why']} |")
        out.append("")
    out.append(f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['ram_mb']} MB RAM, Python {m['python']}, "
               f"SQLite {m['sqlite']}, {m.get('mosquitto') or 'mosquitto ?'}; load average "
               f"{load['loadavg_start']} at the start, {load['loadavg_end']} at the end; the whole machine "
               f"was busy {load['machine_busy_cores']} of {load['cores']} cores on average during the run.")
    out.append("")
    if r.get("method"):
        out.append("How: " + " ".join(r["method"].split()))
        out.append("")
    out += _bullets(r.get("notes", []))
    return out


def _bullets(notes: list[str]) -> list[str]:
    return [f"- {note}" for note in notes] + ([""] if notes else [])


PROFILE_TOP = 12


def _profiles(results_dir: Path) -> list[str]:
    """The "Profiles" part: what ``python -m thanthien.bench.ingest_profile --label L`` recorded in
    ``profiles.json`` (kept here so that a benchmark rewriting this file keeps it)."""
    file = results_dir / "profiles.json"
    if not file.exists():
        return []
    data = json.loads(file.read_text(encoding="utf-8"))
    out = ["## Profiles", "",
           "In-process cProfile of the ingest worker's unit of work (`commit_batch`), recorded by "
           "`python -m thanthien.bench.ingest_profile --label LABEL`: realistic batches (ratings and "
           "telemetry interleaved from many declared nodes, an officer on duty at every counter). Messages "
           "per second here are under the profiler, so compare them with each other only (the CPU per "
           "message, not the wall time, is what the machine's load disturbs least); each line is "
           "calls, own s, cumulative s, share of the run, function.", ""]
    for name, labels in data.items():
        for label, entry in labels.items():
            out.append(f"### {name}, {label}")
            out.append("")
            out.append(f"commit `{entry.get('commit')}` · {entry.get('at')} · load average "
                       f"{[round(x, 2) for x in entry.get('loadavg', [])]}")
            out.append("")
            for kind in ("sqlite", "postgresql"):
                prof = entry.get(kind)
                if not prof:
                    continue
                cpu = f" ({prof['cpu_us_per_message']} µs of this process's CPU each)" \
                    if "cpu_us_per_message" in prof else ""
                out.append(f"{kind}: {fmt(float(prof['per_s']))} messages/s{cpu} over {prof['messages']} "
                           f"messages from {prof['nodes']} nodes in batches of {prof['batch_size']}, "
                           f"{prof['statements_per_batch']} SQL statements per batch; "
                           "top by cumulative time:")
                out.append("")
                out.append("```")
                for calls, own, cum, share, func in prof["cumulative"][:PROFILE_TOP]:
                    out.append(f"{calls:>8} {own:>8.3f} {cum:>8.3f} {share:>5.1f}%  {func}")
                out.append("```")
                out.append("")
            out += _bullets(entry.get("notes", []))
    return out


def write_summary(results_dir: Path, path: Path) -> Path:
    lines = HEADER.splitlines()
    lines.append("")
    found = []
    for name in ORDER:
        file = results_dir / f"{name}.json"
        if file.exists():
            found.append(json.loads(file.read_text(encoding="utf-8")))
    if found:
        lines += ["| benchmark | target | measured | verdict |", "|---|---|---|---|"]
        for r in found:
            for t in r["targets"]:
                lines.append(f"| {r['name']} | {t['figure']}: {t['target']} | "
                             f"{fmt(t['value'])} {t['unit']} | {_verdict(t['met'])} |")
        lines.append("")
    for r in found:
        lines += _section(r)
    lines += _profiles(results_dir)
    missing = [n for n in ORDER if n not in {r["name"] for r in found}]
    if missing:
        lines.append(f"Not run yet: {', '.join(missing)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path
