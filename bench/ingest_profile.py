"""A profile of the ingest worker's unit of work, in-process: ``commit_batch`` over realistic
batches (ratings and telemetry interleaved from many declared nodes, each box at a counter
with an officer on duty), on SQLite and on PostgreSQL when one answers.

``python -m thanthien.bench.ingest_profile --label before|after`` records, per database, the
messages per second of the profiled run, the SQL statements per batch and the top functions by
cumulative and own time (cProfile) in ``bench/results/profiles.json``; ``bench/RESULTS.md``
shows them in its "Profiles" part (the results writer keeps it when a benchmark rewrites the
file). Not a benchmark with a target: it says where the time goes."""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from thanthien.bench.common import RESULTS_DIR, git_commit
from thanthien.bench.hubproc import hub_settings
from thanthien.bench.load import messages, node_ids
from thanthien.bench.pg import throwaway_database
from thanthien.paths import PROJECT_ROOT

PROFILES = "profiles.json"
TOP = 14


def _incoming(msgs: list[tuple[str, str, bytes, str | None]], received_at: datetime) -> list[Any]:
    from thanthien.hub.ingest.base import Incoming
    from thanthien.protocol import Topics

    topics = Topics()
    out = []
    for _node, topic, payload, _eid in msgs:
        parsed = topics.parse(topic)
        assert parsed is not None
        out.append(Incoming(topic=topic, payload=payload, kind=parsed.kind, node=parsed.node,
                            received_at=received_at))
    return out


@contextmanager
def _database(kind: str, work: Path) -> Iterator[str | None]:
    if kind == "sqlite":
        yield f"sqlite:///{work / 'profile.db'}"
        return
    with throwaway_database("bench_profile") as url:
        yield url


def _context(url: str, work: Path, nodes: list[str]) -> Any:
    from thanthien.hub.context import HubContext
    from thanthien.hub.db.session import Database
    from thanthien.hub.roles import SYSTEM
    from thanthien.hub.services import registry
    from thanthien.hub.settings import HubSettings, RegistrySection

    values = hub_settings(str(work / "hub"), 1883, "x", database_url=url, nodes=nodes)
    settings = HubSettings(**values)
    db = Database(url)
    db.migrate()
    now = datetime.now(UTC)
    with db.session() as s:
        registry.apply_declarations(s, registry=RegistrySection(**values["registry"]))
        for i, counter in enumerate(sorted({d.counter for n in settings.registry.nodes for d in n.devices
                                            if d.counter})):
            officer = registry.create_officer(s, actor=SYSTEM, code=f"cb-{i}", full_name=f"Cán bộ {i}")
            registry.add_shift(s, actor=SYSTEM, officer_id=officer.id, counter=counter,
                               starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    return HubContext(settings=settings, db=db)


def profile_one(kind: str, *, n_nodes: int, batches: int, batch_size: int) -> dict[str, Any] | None:
    """Profile ``commit_batch`` over ``batches`` batches on one database (``None``: no server)."""
    from thanthien.hub.ingest.worker import commit_batch

    work = Path(tempfile.mkdtemp(prefix="thanthien-profile-"))
    try:
        with _database(kind, work) as url:
            if url is None:
                return None
            ctx = _context(url, work, node_ids(n_nodes))
            try:
                msgs = messages(node_ids(n_nodes), (batches + 1) * batch_size)
                items = _incoming(msgs, datetime.now(UTC))
                chunks = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
                commit_batch(ctx, chunks[0])  # warm-up: first sight of every node, caches
                statements = {"n": 0}

                def count(*_a: Any) -> None:
                    statements["n"] += 1
                event.listen(ctx.db.engine, "before_cursor_execute", count)
                prof = cProfile.Profile()
                t0, cpu0 = time.perf_counter(), time.process_time()
                prof.enable()
                for chunk in chunks[1:]:
                    commit_batch(ctx, chunk)
                prof.disable()
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                event.remove(ctx.db.engine, "before_cursor_execute", count)
            finally:
                ctx.db.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stats = pstats.Stats(prof)
    measured = batches * batch_size
    return {"messages": measured, "batch_size": batch_size, "nodes": n_nodes,
            "seconds": round(elapsed, 3), "per_s": round(measured / elapsed, 1),
            "cpu_us_per_message": round(1e6 * cpu / measured, 1),
            "statements_per_batch": round(statements["n"] / batches, 1),
            "cumulative": _top(stats, "cumulative"), "own": _top(stats, "tottime")}


def _top(stats: pstats.Stats, key: str) -> list[list[Any]]:
    """[calls, own s, cumulative s, function] of the top functions by ``key``, leaving out the
    profiled loop itself and the profiler."""
    rows = []
    total = stats.total_tt or 1.0  # type: ignore[attr-defined]
    entries = stats.stats.items()  # type: ignore[attr-defined]
    order = 3 if key == "cumulative" else 2
    for (path, line, name), (_cc, calls, own, cum, _callers) in sorted(
            entries, key=lambda e: e[1][order], reverse=True):
        where = _short(path)
        if name in ("<module>", "profile_one") or "cProfile" in where or path == "~":
            continue
        share = round(100 * (cum if order == 3 else own) / total, 1)
        rows.append([calls, round(own, 3), round(cum, 3), share, f"{where}:{line}({name})"])
        if len(rows) >= TOP:
            break
    return rows


def _short(path: str) -> str:
    for marker in ("site-packages/", "/thanthien/", f"{PROJECT_ROOT}/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return os.path.basename(path)


def record(label: str, *, n_nodes: int, batches: int, batch_size: int, results_dir: Path = RESULTS_DIR,
           name: str = "ingest", notes: list[str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"label": label, "at": datetime.now(UTC).isoformat(timespec="seconds"),
                             "commit": (git_commit() or "?")[:10], "loadavg": list(os.getloadavg()),
                             "notes": list(notes or [])}
    for kind in ("sqlite", "postgresql"):
        entry[kind] = profile_one(kind, n_nodes=n_nodes, batches=batches, batch_size=batch_size)
    path = results_dir / PROFILES
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.setdefault(name, {})[label] = entry
    results_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="e.g. before or after")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--note", action="append", default=[], help="what the profile shows (repeatable)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the spike alarms of the random scores, gaps
    entry = record(args.label, n_nodes=args.nodes, batches=args.batches, batch_size=args.batch_size,
                   notes=args.note)
    for kind in ("sqlite", "postgresql"):
        p = entry[kind]
        if p is None:
            continue
        print(f"== {kind}: {p['per_s']:.0f} messages/s in-process, {p['statements_per_batch']} statements "
              f"per batch of {p['batch_size']}")
        for row in p["cumulative"]:
            print(f"  {row[0]:>7} {row[1]:>8.3f} {row[2]:>8.3f} {row[3]:>5.1f}%  {row[4]}")
    from thanthien.bench.summary import write_summary
    write_summary(RESULTS_DIR, RESULTS_DIR.parent / "RESULTS.md")


if __name__ == "__main__":
    main()
