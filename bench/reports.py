"""Reports: the satisfaction summary by officer and month over a year of stored ratings, through
the hub's own ``reports.summarize`` (what the API and the web UI call, reading the counts kept at
ingest: per local month for whole months, per local day for the days around them), against the
bare SQL over the ratings it replaces (one GROUP BY officer, UTC month, level, with the sqlite3
module or psycopg, no time zone folding, no objects) on the same database in the same run: 1 and
10 million ratings, on SQLite and on PostgreSQL.

The data sets grow the way a province does: a year of presses, about 137 a day at every counter,
with 20 counters (40 officers) per million ratings, so 10 million ratings are 200 counters and
ten times the counts too. They are generated inside the database (a recursive CTE on SQLite,
``generate_series`` on PostgreSQL; the same rows on both), then counted by
``rating_counts.rebuild`` (what the migration and a restore run; its time is reported). SQLite
files are made once into ``var/bench/reports/`` and reused; PostgreSQL gets a throwaway database
per size per run. Each query runs once cold and then ``repeats`` times; the median of the warm
runs is reported. Also measured: a period from and to arbitrary instants (whole days from the
counts, the two partial days from the ratings), the old way (``summarize_raw``, counting the
ratings) at 1 million on SQLite, and what keeping the counts adds to storing a batch of 500
ratings (against the insert of those ratings)."""

from __future__ import annotations

import json
import logging
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from thanthien.bench.common import Options, Result, Target, run_measured
from thanthien.bench.pg import throwaway_database
from thanthien.hub.db.models import Counter, Officer, Rating
from thanthien.hub.db.session import Database
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import rating_counts
from thanthien.hub.services.ratings import RatingFilter
from thanthien.hub.services.reports import summarize, summarize_raw

log = logging.getLogger(__name__)

NAME = "reports"
TITLE = "Reports: satisfaction summary by officer and month from the counts kept at ingest (1M, 10M ratings)"
TZ = "Asia/Ho_Chi_Minh"
START = int(datetime(2024, 12, 31, 17, 0, tzinfo=UTC).timestamp())  # 00:00 on 1 January 2025 in Hà Nội
SPAN = 365 * 86400
PER_COUNTER = 50_000  # ratings per counter and year
CHUNK = 1_000_000
DATASET = 2  # in the file name: a data set made another way is made again
GROUP_BY = ["officer", "month"]
# an API period from and to arbitrary instants: 09:13 on 3 February to 15:47 on 17 November 2025
PARTIAL_START = datetime(2025, 2, 3, 2, 13, tzinfo=UTC)
PARTIAL_END = datetime(2025, 11, 17, 8, 47, tzinfo=UTC)
PARTIAL = RatingFilter(start=PARTIAL_START, end=PARTIAL_END)
TARGET_MS = {1_000_000: 100, 10_000_000: 300}

# One row per i: counter i mod C, times spread evenly over the year, levels 50/30/13/7 %, the
# counter's morning or afternoon officer by the local (UTC+7) hour, nobody for one press in 37.
_ROW = {
    "counter": "i % {c} + 1",
    "level": "CASE WHEN h < 50 THEN 4 WHEN h < 80 THEN 3 WHEN h < 93 THEN 2 ELSE 1 END",
    "officer": "CASE WHEN h2 % 37 = 0 THEN NULL ELSE 2 * (i % {c}) + 1 + "
               "(CASE WHEN (t + 25200) % 86400 >= 43200 THEN 1 ELSE 0 END) END",
}
_FIELDS = "{start} + (i * {span}) / {n} AS t, (i * 2654435761) % 4294967296 % 100 AS h, " \
          "(i * 2246822519) % 4294967296 AS h2"
_COLUMNS = "node_id, event_id, seq, box, counter_code, score, pressed_at, received_at, officer_id"
SQLITE_FILL = (
    "WITH RECURSIVE s(i) AS (SELECT {a} UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {b}) "
    f"INSERT INTO ratings ({_COLUMNS}) "
    "SELECT 'node-' || ({counter}), printf('%032x', i), i / {c} + 1, 'box-1', 'quay-' || ({counter}), "
    "{level}, datetime(t, 'unixepoch') || '.000000', datetime(t + 1, 'unixepoch') || '.000000', {officer} "
    f"FROM (SELECT i, {_FIELDS} FROM s) AS g")
PG_FILL = (
    f"INSERT INTO ratings ({_COLUMNS}) "
    "SELECT 'node-' || ({counter}), lpad(to_hex(i), 32, '0')::uuid, i / {c} + 1, 'box-1', "
    "'quay-' || ({counter}), {level}, to_timestamp(t), to_timestamp(t + 1), {officer} "
    f"FROM (SELECT i, {_FIELDS} FROM generate_series({{a}}::bigint, {{b}}::bigint - 1) AS i) AS g")
BARE = {"sqlite": "SELECT officer_id, strftime('%Y-%m', pressed_at) AS month, score, count(*) FROM ratings "
                  "GROUP BY officer_id, month, score",
        "postgresql": "SELECT officer_id, date_trunc('month', pressed_at) AS month, score, count(*) "
                      "FROM ratings GROUP BY 1, 2, 3"}


def counters_for(rows: int) -> int:
    return max(2, rows // PER_COUNTER)


def _fill_sql(template: str, *, rows: int, a: int, b: int) -> str:
    c = counters_for(rows)
    parts = {k: v.format(c=c) for k, v in _ROW.items()}
    return template.format(a=a, b=b, c=c, n=rows, start=START, span=SPAN, **parts)


def fill(db: Database, rows: int) -> dict[str, float]:
    """Migrate, add the counters and officers, generate ``rows`` ratings, count them; timings."""
    db.migrate()
    c = counters_for(rows)
    with db.session() as s:
        s.add_all(Counter(code=f"quay-{i}", name=f"Quầy {i}", commune_id=1) for i in range(1, c + 1))
        s.add_all(Officer(code=f"cb-{i}", full_name=f"Cán bộ {i}", commune_id=1) for i in range(1, 2 * c + 1))
    t = time.perf_counter()
    template = SQLITE_FILL if db.is_sqlite else PG_FILL
    for a in range(0, rows, CHUNK):
        with db.engine.begin() as conn:
            if db.is_sqlite:  # 1 GB: with SQLite's 2 MB the indexes' pages are read back from disk
                conn.exec_driver_sql("PRAGMA cache_size = -1048576")
            sql = _fill_sql(template, rows=rows, a=a, b=min(rows, a + CHUNK))
            conn.exec_driver_sql(sql if db.is_sqlite else sql.replace("%", "%%"))  # psycopg's placeholders
    generated = time.perf_counter() - t
    t = time.perf_counter()
    with db.engine.begin() as conn:
        count_rows = rating_counts.rebuild(conn)
    counted = time.perf_counter() - t
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return {"generate_s": round(generated, 1), "counts_rebuild_s": round(counted, 1),
            "count_rows": count_rows}


def _schema_is_current(path: Path) -> bool:
    """Whether the file's tables are still the models' (a migration filled in since makes it again)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from thanthien.hub.db.models import Base

    db = Database(f"sqlite:///{path}")
    try:
        with db.engine.connect() as conn:
            return not compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        db.dispose()


def sqlite_dataset(directory: Path, rows: int) -> tuple[Path, dict[str, Any]]:
    """The SQLite file with ``rows`` ratings, made once (a ``.done`` marker holds its timings)."""
    path = directory / f"ratings-{rows}-v{DATASET}.db"
    marker = path.with_suffix(".done")
    if path.exists() and marker.exists() and _schema_is_current(path):
        return path, {**json.loads(marker.read_text()), "reused": True}
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}")
    try:
        made = fill(db, rows)
    finally:
        db.dispose()
    marker.write_text(json.dumps(made) + "\n")
    return path, made


def _timed(fn: Callable[[], int], repeats: int) -> tuple[float, float, int]:
    t = time.perf_counter()
    n = fn()
    cold = time.perf_counter() - t
    warm = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t)
    return cold, statistics.median(warm) if warm else cold, n


def _hub(db: Database, flt: RatingFilter, raw: bool = False) -> Callable[[], int]:
    fn = summarize_raw if raw else summarize

    def run() -> int:
        with db.session(write=False) as session:
            return len(fn(session, group_by=GROUP_BY, flt=flt, tz=TZ, viewer=SYSTEM))  # type: ignore[arg-type]
    return run


def _bare(db: Database) -> Callable[[], int]:
    sql = BARE[db.dialect]

    def run() -> int:
        raw = db.engine.raw_connection()  # the driver's own cursor: no SQLAlchemy objects
        try:
            cur = raw.cursor()
            cur.execute(sql)
            n = len(cur.fetchall())
            cur.close()
            raw.rollback()
        finally:
            raw.close()
        return n
    return run


def _label(rows: int) -> str:
    return f"{rows // 1_000_000}m" if rows >= 1_000_000 else f"{rows // 1000}k"


def _note(result: Result, *, rows: int, backend: str, made: dict[str, Any]) -> None:
    how = "reused from an earlier run, made" if made.get("reused") else "made"
    result.notes.append(
        f"{backend} {rows:,} ratings ({counters_for(rows)} counters): {how} in {made['generate_s']} s, then "
        f"counted by rating_counts.rebuild (what migration 0010 and a restore run) in "
        f"{made['counts_rebuild_s']} s into {made['count_rows']:,} count rows.")


def measure(result: Result, db: Database, *, rows: int, backend: str, repeats: int, raw_too: bool) -> None:
    key = f"{backend}_{_label(rows)}"
    hub_cold, hub_warm, groups = _timed(_hub(db, RatingFilter()), repeats)
    _pc, part_warm, _pg = _timed(_hub(db, PARTIAL), repeats)
    bare_cold, bare_warm, bare_groups = _timed(_bare(db), 1 if rows >= 10_000_000 else repeats)
    base = round(bare_warm * 1000, 1)
    result.figures[f"{key}_summary_ms"] = round(hub_warm * 1000, 2)
    result.baseline[f"{key}_summary_ms"] = base
    result.figures[f"{key}_summary_cold_ms"] = round(hub_cold * 1000, 2)
    result.baseline[f"{key}_summary_cold_ms"] = round(bare_cold * 1000, 1)
    result.figures[f"{key}_partial_days_ms"] = round(part_warm * 1000, 2)
    result.baseline[f"{key}_partial_days_ms"] = base
    if raw_too:
        _rc, raw_warm, _rg = _timed(_hub(db, RatingFilter(), raw=True), 1)
        result.figures[f"{key}_summary_raw_ms"] = round(raw_warm * 1000, 1)
        result.baseline[f"{key}_summary_raw_ms"] = base
    result.params[f"{key}_groups"] = groups
    result.params[f"{key}_bare_rows"] = bare_groups
    ms = result.figures[f"{key}_summary_ms"]
    wanted = TARGET_MS.get(rows)
    name = "SQLite" if backend == "sqlite" else "PostgreSQL"
    figure = f"satisfaction summary over {rows:,} ratings ({name})"
    if wanted is None:
        result.targets.append(Target(figure, "≤ 100 ms at 1M, ≤ 300 ms at 10M", ms, "ms", None,
                                     "only judged at 1M and 10M ratings"))
        return
    met = ms <= wanted
    why = "" if met else (
        f"{ms:,.0f} ms against {wanted} ms: the summary adds up {result.params.get(key + '_count_rows')} "
        "count rows (counter, officer, local day) in the database and folds the months here; the bare "
        f"GROUP BY over the ratings takes {base:,.0f} ms")
    result.targets.append(Target(figure, f"≤ {wanted} ms", ms, "ms", met, why))


def upkeep(result: Result, directory: Path, *, batches: int) -> None:
    """What counting adds to storing a batch of 500 ratings at 20 counters (SQLite, WAL, FULL)."""
    path = directory / "upkeep.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}")
    inserts, counts = [], []
    try:
        db.migrate()
        at = datetime(2025, 6, 1, 1, 0, tzinfo=UTC)
        for b in range(batches):
            rows = [{"node_id": f"node-{i % 20 + 1}", "event_id": uuid.UUID(int=b * 1000 + i + 1),
                     "seq": b * 500 + i, "box": "box-1", "counter_code": f"quay-{i % 20 + 1}",
                     "score": 1 + (i * 7 + b) % 4, "pressed_at": at + timedelta(seconds=b * 500 + i),
                     "received_at": at, "officer_id": None} for i in range(500)]
            with db.session() as session:
                t = time.perf_counter()
                session.execute(insert(Rating), rows)
                t1 = time.perf_counter()
                rating_counts.add(session, rows=rows)
                rating_counts.flush(session)
                t2 = time.perf_counter()
            inserts.append(t1 - t)
            counts.append(t2 - t1)
    finally:
        db.dispose()
    result.figures["count_upkeep_ms_per_500"] = round(statistics.median(counts) * 1000, 2)
    result.baseline["count_upkeep_ms_per_500"] = round(statistics.median(inserts) * 1000, 2)


def run(opts: Options) -> Result:
    return run_measured(NAME, TITLE, opts, lambda r: _body(r, opts))


def _body(result: Result, opts: Options) -> None:
    sizes = opts.pick([1_000_000, 10_000_000], [100_000, 1_000_000], [5_000])
    repeats = opts.pick(5, 3, 2)
    directory = opts.work_dir / "reports"
    result.params = {"sizes": sizes, "ratings_per_counter": PER_COUNTER, "officers_per_counter": 2,
                     "days": 365, "group_by": ",".join(GROUP_BY), "tz": TZ, "repeats": repeats,
                     "partial_period": f"{PARTIAL_START.isoformat()} .. {PARTIAL_END.isoformat()}"}
    for rows in sizes:
        path, made = sqlite_dataset(directory, rows)
        key = f"sqlite_{_label(rows)}"
        result.params.update({f"{key}_{k}": v for k, v in made.items()})
        result.params[f"{key}_counters"] = counters_for(rows)
        _note(result, rows=rows, backend="SQLite", made=made)
        db = Database(f"sqlite:///{path}")
        try:
            measure(result, db, rows=rows, backend="sqlite", repeats=repeats, raw_too=rows == sizes[0])
        finally:
            db.dispose()
    for rows in sizes:
        with throwaway_database(f"thanthien_bench_reports_{_label(rows)}") as url:
            if url is None:
                result.notes.append("PostgreSQL did not answer on 127.0.0.1:5432: its variants were not run.")
                break
            db = Database(url)
            try:
                made = fill(db, rows)
                key = f"postgresql_{_label(rows)}"
                result.params.update({f"{key}_{k}": v for k, v in made.items()})
                _note(result, rows=rows, backend="PostgreSQL", made=made)
                measure(result, db, rows=rows, backend="postgresql", repeats=repeats, raw_too=False)
            finally:
                db.dispose()
    upkeep(result, directory, batches=opts.pick(40, 20, 5))
    result.notes.append("Cold: the first summary in the process, on a connection just opened (SQLite's page "
                        "cache empty); the targets are judged on the warm median.")
    result.ratio = {k: round(result.figures[k] / result.baseline[k], 4)
                    for k in result.figures if result.baseline.get(k)}
    result.method = __doc__ or ""
