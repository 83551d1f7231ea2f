"""Ingest: ratings and telemetry from many nodes through the broker into the hub's database,
committed and (for ratings) acked, per second, against a bare paho subscriber inserting the
same messages into SQLite with no validation, in the same run. Also on PostgreSQL and with
two hub ingest workers on an MQTT v5 shared subscription.

Each variant gets a fresh database and a fresh publisher process that sends the same
messages, as fast as QoS 1 allows, from one MQTT client per node (the node's own account).
The rate is messages / (last commit or last ack at the node - first publish). Each variant
runs on a broker of its own: a hub's persistent session left on a shared broker would have
the broker queue the next variants' messages for it (slowing them) and hand them to the next
hub taking the session. A round runs every variant once, each baseline just before the hub
it is compared with; the default size runs five rounds and reports the median rates and the
median of the rounds' ratios (a variant of 20,000 messages lasts two to five seconds, and
single rounds on this 2-core machine gave ratios from 0.68x to 1.28x for the same code)."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

from thanthien.bench.common import Options, Result, Target, run_measured, wait_for
from thanthien.bench.hubproc import Commits, HubProcess, hub_settings
from thanthien.bench.load import BareSubscriber, Publisher, messages, node_ids, start_broker
from thanthien.bench.pg import throwaway_database

log = logging.getLogger(__name__)

NAME = "ingest"
STALL_S = 10.0
TITLE = "Ingest: committed and acked per second vs a bare paho → SQLite subscriber"


def _variant(label: str, consumers: list[Any], publisher_args: tuple, expect_acks: bool,
             stall_s: float = STALL_S) -> dict[str, Any]:
    started: list[Any] = []
    publisher = None
    try:
        for consumer in consumers:
            started.append(consumer.start())
        publisher = Publisher(*publisher_args)
        publisher.go()
        pub = publisher.published()
        total = len(publisher_args[2])
        progress = {"n": -1, "at": time.monotonic()}

        def done() -> bool:  # all committed, or nothing new for stall_s (lost)
            n = sum(c.stats()["messages"] for c in started)
            if n != progress["n"]:
                progress.update(n=n, at=time.monotonic())
            return n >= total or time.monotonic() - progress["at"] > stall_s
        wait_for(done, timeout=3600, every=0.2)
        msgs = publisher_args[2]
        acks = _finish_with_acks(publisher, msgs, stall_s) if expect_acks else publisher.finish()
        publisher = None
        commits: list[Commits] = [c.stop() for c in started]
        started = []
    finally:
        if publisher is not None:
            publisher.kill()
        for c in started:
            c.kill()
    committed = sum(c.messages for c in commits)
    last_commit = max(max(c.times) for c in commits if c.times)
    end = max(last_commit, acks["t_last_ack"] or 0)
    elapsed = end - pub["t0"]
    return {"label": label, "messages": total, "committed": committed, "acked": acks["acked"],
            "ingest_errors": sum(c.errors for c in commits),
            "conflicts_retried": sum(c.retries for c in commits),
            "elapsed_s": elapsed, "rate": committed / elapsed,
            "publish_s": pub["t_published"] - pub["t0"], "batches": sum(len(c.sizes) for c in commits)}


def _finish_with_acks(publisher: Publisher, msgs: list, stall_s: float) -> dict[str, Any]:
    """Wait until every rating is acked at its node (or nothing new for stall_s), then collect."""
    wanted = sum(1 for m in msgs if m[3] is not None)
    progress = {"n": -1, "at": time.monotonic()}

    def done() -> bool:
        n = publisher.acked()
        if n != progress["n"]:
            progress.update(n=n, at=time.monotonic())
        return n >= wanted or time.monotonic() - progress["at"] > stall_s
    wait_for(done, timeout=3600, every=0.2)
    result = publisher.finish()
    if result["acked"] < wanted:
        log.warning("only %d of %d ratings were acked", result["acked"], wanted)
    return result


def run(opts: Options) -> Result:
    return run_measured(NAME, TITLE, opts, lambda r: _body(r, opts))


def _body(result: Result, opts: Options) -> None:
    n_nodes = opts.pick(20, 10, 4)
    total = opts.pick(20_000, 4_000, 200)
    rounds = opts.pick(5, 1, 1)
    work = opts.work_dir / "ingest"
    shutil.rmtree(work, ignore_errors=True)
    nodes = node_ids(n_nodes)
    msgs = messages(nodes, total)
    ratings = sum(1 for m in msgs if m[3] is not None)
    result.params = {"nodes": n_nodes, "messages": total, "ratings": ratings, "rounds": rounds,
                     "telemetry": total - ratings, "qos": 1, "batch_size": 500, "flush_ms": 20}
    every = [_round(result, work / f"round-{r}", nodes, msgs, opts) for r in range(1, rounds + 1)]
    _figures(result, every, ratings)
    result.method = __doc__ or ""
    for r, runs in enumerate(every, 1):
        result.details.extend(
            f"round {r}, {v['label']}: {v['committed']} committed, {v['acked']} acked in "
            f"{v['elapsed_s']:.2f} s ({v['rate']:.0f}/s; publishing took {v['publish_s']:.2f} s)"
            for v in runs.values())


def _round(result: Result, work: Path, nodes: list[str], msgs: list,
           opts: Options) -> dict[str, dict[str, Any]]:
    """Every variant once, each baseline just before the hub figure it is compared with, each on a
    broker of its own (a hub's persistent session left on a shared broker would have it queue the
    next variants' messages, and hand them to the next hub that takes the session)."""
    runs: dict[str, dict[str, Any]] = {}

    def variant(key: str, label: str, consumers: Callable[[Any], list[Any]], *, acks: bool,
                stall_s: float = STALL_S) -> None:
        broker = start_broker(work / f"broker-{key}", nodes)
        try:
            runs[key] = _variant(label, consumers(broker), (broker.port, broker.passwords, msgs),
                                 expect_acks=acks, stall_s=stall_s)
        finally:
            broker.stop()

    def hub(broker: Any, name: str, url: str | None = None, **ingest: Any) -> HubProcess:
        return HubProcess(hub_settings(str(work / name), broker.port, broker.passwords["hub"],
                                       database_url=url, nodes=nodes, **ingest))

    def bare(target: Path | str) -> Callable[[Any], list[Any]]:
        return lambda broker: [BareSubscriber(broker.port, broker.passwords["hub"], target)]

    variant("bare", "bare paho → SQLite", bare(_fresh(work / "bare.db")), acks=False)
    variant("hub_sqlite", "hub, SQLite", lambda b: [hub(b, "hub-sqlite")], acks=True)
    with throwaway_database("bench_ingest_bare") as pg_url:
        if pg_url is None:
            if not any("PostgreSQL not reachable" in n for n in result.notes):
                result.notes.append("PostgreSQL not reachable on 127.0.0.1:5432: its variants were skipped.")
        else:
            variant("bare_pg", "bare paho → PostgreSQL", bare(pg_url), acks=False)
    with throwaway_database("bench_ingest") as pg_url:
        if pg_url is not None:
            variant("hub_pg", "hub, PostgreSQL", lambda b: [hub(b, "hub-pg", pg_url)], acks=True)
    with throwaway_database("bench_ingest2") as pg_url:
        url = pg_url
        label = "hub, 2 workers ($share), PostgreSQL" if url else "hub, 2 workers ($share), SQLite"
        variant("hub_two_workers", label,
                lambda b: [hub(b, f"hub-two-{i}", url, client_id=f"bench-hub-w{i}", shared_group="bench")
                           for i in (1, 2)],
                acks=True, stall_s=opts.pick(STALL_S, STALL_S, 3.0))
    return runs


def _figures(result: Result, every: list[dict[str, dict[str, Any]]], ratings: int) -> None:
    """Each hub figure against its own baseline of the same round: SQLite against the bare paho →
    SQLite subscriber, PostgreSQL against the bare paho → PostgreSQL one, two workers against one
    (on PostgreSQL when it answered). The rates are the medians of the rounds, the ratios the
    medians of each round's ratio (a round's hub and its baseline ran minutes apart at most)."""
    against = {"hub_sqlite": "bare", "hub_pg": "bare_pg",
               "hub_two_workers": "hub_pg" if "hub_pg" in every[0] else "hub_sqlite"}
    for key, base_key in against.items():
        if key not in every[0] or base_key not in every[0]:
            continue
        result.figures[f"{key}_per_s"] = round(median(r[key]["rate"] for r in every), 1)
        result.baseline[f"{key}_per_s"] = round(median(r[base_key]["rate"] for r in every), 1)
        result.ratio[f"{key}_per_s"] = round(median(r[key]["rate"] / r[base_key]["rate"] for r in every), 3)
        if len(every) > 1:
            result.params[f"{key}_ratio_by_round"] = [round(r[key]["rate"] / r[base_key]["rate"], 3)
                                                     for r in every]
    result.params["baselines"] = {f"{k}_per_s": v for k, v in against.items()}
    result.params["runs"] = [{k: {kk: (round(vv, 3) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                              for k, v in runs.items()} for runs in every]
    for r, round_ in enumerate(every, 1):
        for key, run_ in round_.items():
            label = f"round {r}, {run_['label']}"
            if run_["committed"] < run_["messages"]:
                result.notes.append(
                    f"{label}: only {run_['committed']} of {run_['messages']} committed; the hub counted "
                    f"{run_['ingest_errors']} ingest error(s). A batch that fails on a database error "
                    "is left unacked; a real node's outbox sends it again, this benchmark's publisher "
                    "does not, so "
                    "the rate counts what was committed.")
            if not key.startswith("bare") and run_["acked"] < ratings:
                result.notes.append(f"{label}: only {run_['acked']} of {ratings} ratings acked.")
            if run_.get("conflicts_retried"):
                result.notes.append(f"{label}: {run_['conflicts_retried']} batch(es) lost a database "
                                    "conflict (deadlock or serialization failure) and were retried.")
    ratio = result.ratio["hub_sqlite_per_s"]
    result.targets.append(Target(
        "ingest committed and acked vs bare baseline (SQLite)", "≥ 0.8x", ratio, "x", ratio >= 0.8,
        "" if ratio >= 0.8 else WHY_SLOW))
    if "hub_pg_per_s" in result.ratio:
        ratio = result.ratio["hub_pg_per_s"]
        result.targets.append(Target(
            "ingest committed and acked vs bare baseline (PostgreSQL)", "≥ 0.8x", ratio, "x", ratio >= 0.8,
            "" if ratio >= 0.8 else WHY_SLOW))
    if "hub_two_workers_per_s" in result.ratio:
        twos = [r["hub_two_workers"] for r in every]
        ratio = result.ratio["hub_two_workers_per_s"]
        whole = all(t["committed"] >= t["messages"] and t["acked"] >= ratings and not t["ingest_errors"]
                    for t in twos)
        result.targets.append(Target(
            "two ingest workers vs one", "≥ 1.6x", ratio, "x", ratio >= 1.6,
            "" if ratio >= 1.6 else WHY_TWO))
        conflicts = sum(int(t.get("conflicts_retried", 0)) for t in twos)
        result.targets.append(Target(
            "two ingest workers: database conflicts (deadlocks), with every message committed and acked",
            "0", float(conflicts), "", whole and conflicts == 0,
            "" if whole and conflicts == 0 else
            f"{conflicts} conflict(s) retried over {len(twos)} round(s); committed "
            f"{[t['committed'] for t in twos]} of {twos[0]['messages']}, acked {[t['acked'] for t in twos]} "
            f"of {ratings} ratings"))

WHY_TWO = ("Two hub processes split the messages with no database conflict between them, but on this "
           "2-core machine they share the cores with PostgreSQL, the broker and the publisher, and the "
           "publisher itself tops out near 10,000 messages/s here (its publishing time in the rounds below "
           "is about the two workers' whole time): 1.6x one worker's 5,000-7,500/s is at or above what the "
           "load generator sends. See the rounds' figures in the details.")

WHY_SLOW = ("The hub spends about 120 µs of CPU on a message (python -m thanthien.bench.ingest_spy: paho's "
            "network thread 45 %, reading each packet and sending one PUBACK per message; the ingest worker "
            "50 %, validation, claim checks, the driver INSERTs, the node rows, the commit), the bare "
            "subscriber well under half of that, in one process under the GIL, on a machine whose 2 cores "
            "also carry the broker, the publisher and PostgreSQL.")


def _fresh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path
