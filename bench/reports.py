"""Reports: the satisfaction summary by officer and month over 1 million stored ratings
(SQLite), through the hub's own ``reports.summarize`` (what the API and the web UI call),
against the bare SQL it rests on (one GROUP BY officer, UTC month, level with the sqlite3
module, no time zone folding, no objects) on the same database in the same run.

The data set (a year of presses at 20 counters staffed by 40 officers) is generated once
into ``var/bench/reports/`` and reused; each query is run once cold and then ``repeats``
times, and the median of the warm runs is reported."""

from __future__ import annotations

import logging
import random
import sqlite3
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from thanthien.bench.common import Options, Result, Target, run_measured
from thanthien.hub.db.models import Counter, Officer, Rating
from thanthien.hub.db.session import Database
from thanthien.hub.services.ratings import RatingFilter
from thanthien.hub.services.reports import summarize

log = logging.getLogger(__name__)

NAME = "reports"
TITLE = "Reports: satisfaction summary by officer and month over stored ratings (SQLite)"
TZ = "Asia/Ho_Chi_Minh"
COUNTERS = 20
OFFICERS = 40
CHUNK = 50_000


def dataset(directory: Path, rows: int) -> Path:
    """The SQLite file with ``rows`` ratings, made once (a ``.done`` marker says it is whole)."""
    path = directory / f"ratings-{rows}.db"
    marker = path.with_suffix(".done")
    if path.exists() and marker.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}")
    db.migrate()
    rng = random.Random(1)
    with db.session() as s:
        s.add_all(Counter(code=f"quay-{i}", name=f"Quầy {i}") for i in range(1, COUNTERS + 1))
        s.add_all(Officer(code=f"cb-{i}", full_name=f"Cán bộ {i}") for i in range(1, OFFICERS + 1))
    start = datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
    span = 365 * 24 * 3600
    seqs = [0] * COUNTERS
    done = 0
    with db.engine.begin() as conn:
        while done < rows:
            batch = []
            for _ in range(min(CHUNK, rows - done)):
                c = rng.randrange(COUNTERS)
                seqs[c] += 1
                at = start + timedelta(seconds=rng.randrange(span))
                batch.append({"node_id": f"node-{c + 1}", "event_id": uuid.UUID(int=rng.getrandbits(128)),
                              "seq": seqs[c], "box": "box-1", "counter_code": f"quay-{c + 1}",
                              "score": rng.choices((4, 3, 2, 1), (0.5, 0.3, 0.13, 0.07))[0],
                              "pressed_at": at, "received_at": at + timedelta(seconds=1),
                              "officer_id": 1 + (c * 2 + (at.hour >= 5)) % OFFICERS})
            conn.execute(insert(Rating), batch)
            done += len(batch)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    db.dispose()
    marker.write_text(f"{rows}\n")
    return path


def _bare(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT officer_id, strftime('%Y-%m', pressed_at) AS month, score, count(*) "
                            "FROM ratings GROUP BY officer_id, month, score").fetchall()
    finally:
        conn.close()
    return len(rows)


def _hub(db: Database) -> int:
    with db.session(write=False) as session:
        return len(summarize(session, group_by=["officer", "month"], flt=RatingFilter(), tz=TZ))


def _timed(fn, repeats: int) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    n = fn()
    cold = time.perf_counter() - t
    warm = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t)
    return cold, statistics.median(warm), n


def run(opts: Options) -> Result:
    return run_measured(NAME, TITLE, opts, lambda r: _body(r, opts))


def _body(result: Result, opts: Options) -> None:
    rows = opts.pick(1_000_000, 100_000, 5_000)
    repeats = opts.pick(5, 3, 2)
    t = time.perf_counter()
    path = dataset(opts.work_dir / "reports", rows)
    result.params = {"ratings": rows, "counters": COUNTERS, "officers": OFFICERS, "months": 12,
                     "group_by": "officer,month", "tz": TZ, "repeats": repeats,
                     "dataset_ready_s": round(time.perf_counter() - t, 1), "dataset": str(path)}
    db = Database(f"sqlite:///{path}")
    try:
        hub_cold, hub_warm, groups = _timed(lambda: _hub(db), repeats)
    finally:
        db.dispose()
    bare_cold, bare_warm, bare_groups = _timed(lambda: _bare(path), repeats)
    result.figures = {"summary_ms": round(hub_warm * 1000, 1), "summary_cold_ms": round(hub_cold * 1000, 1)}
    result.baseline = {"summary_ms": round(bare_warm * 1000, 1),
                       "summary_cold_ms": round(bare_cold * 1000, 1)}
    result.ratio = {k: round(result.figures[k] / result.baseline[k], 3) for k in result.figures}
    result.params.update(groups=groups, bare_rows=bare_groups)
    ms = result.figures["summary_ms"]
    met = ms <= 500 if rows >= 1_000_000 else None
    why = "" if met in (True, None) else (
        f"the bare GROUP BY alone (the baseline) takes {result.baseline['summary_ms']:,.0f} ms over "
        f"{rows:,} rows on this machine, so no summary computed from the raw ratings table meets "
        "500 ms here; the hub adds grouping by UTC hour (so that any local period can be cut) and "
        "folds those groups in Python. Meeting it needs counts kept pre-aggregated (e.g. per counter, "
        "officer, local day and level, updated at ingest), a change to the hub's reports.")
    result.targets.append(Target(f"satisfaction summary over {rows:,} ratings (SQLite)", "≤ 500 ms", ms,
                                 "ms", met, why if rows >= 1_000_000 else "only judged at 1M ratings"))
    result.method = __doc__ or ""
