"""Where the hub process spends its time under the ingest benchmark's load, all threads: the MQTT
network thread (paho reading packets, PUBACKs, the link's routing, the queue) as well as the ingest
worker, which the in-process profile (``ingest_profile``) does not see.

``python -m thanthien.bench.ingest_spy [--database sqlite|postgresql] [--messages N]`` starts a
broker, the hub (ingest role) in its own process and the benchmark's publisher (20 nodes, ratings
and telemetry, QoS 1), samples the hub with py-spy (``py-spy record -f raw``; py-spy is not a
dependency of the project: ``pip install py-spy`` first) until every message is committed, and
prints the rate, the hub's CPU per message and the top frames by own and by inclusive samples.
Not a benchmark with a target: it says where the time goes."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from thanthien.bench.common import wait_for
from thanthien.bench.hubproc import HubProcess, hub_settings
from thanthien.bench.load import Publisher, messages, node_ids, start_broker
from thanthien.bench.pg import throwaway_database

log = logging.getLogger(__name__)


def top_frames(raw: Path, n: int = 25) -> dict[str, list[tuple[float, str]]]:
    """The ``n`` frames with the most samples of their own and inclusive, as shares of all samples
    (py-spy's raw format: one ``frame;frame;... count`` line per distinct stack)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_short(f) for f in stack.split(";")[1:]]  # the first is the thread
        if frames:
            own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    total = total or 1
    return {"own": [(100 * c / total, f) for f, c in own.most_common(n)],
            "inclusive": [(100 * c / total, f) for f, c in inclusive.most_common(n)]}


def _short(frame: str) -> str:
    for marker in ("site-packages/", f"{Path.cwd()}/"):
        frame = frame.replace(marker, "")
    return frame


def spy(database: str, total: int, rate_hz: int = 200) -> dict[str, object]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    work = Path(tempfile.mkdtemp(prefix="thanthien-spy-"))
    nodes = node_ids(20)
    msgs = messages(nodes, total)
    broker = start_broker(work / "broker", nodes)
    try:
        pg = throwaway_database("bench_spy") if database == "postgresql" else contextlib.nullcontext(None)
        with pg as url:
            if database == "postgresql" and url is None:
                raise SystemExit("PostgreSQL not reachable on 127.0.0.1:5432")
            hub = HubProcess(hub_settings(str(work / "hub"), broker.port, broker.passwords["hub"],
                                          database_url=url, nodes=nodes)).start()
            publisher = Publisher(broker.port, broker.passwords, msgs)
            raw = work / "hub.txt"
            command = [py_spy, "record", "--pid", str(hub.pid), "-r", str(rate_hz), "-f", "raw",
                       "-o", str(raw),
                       "--nonblocking"]
            recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cpu0 = hub.stats()["cpu_s"]
            publisher.go()
            published = publisher.published()
            wait_for(lambda: hub.stats()["messages"] >= total, timeout=600, every=0.2)
            elapsed = time.monotonic() - published["t0"]
            cpu = hub.stats()["cpu_s"] - cpu0
            recorder.send_signal(signal.SIGINT)
            recorder.wait(60)
            publisher.finish()
            hub.stop()
            return {"database": database, "messages": total, "per_s": total / elapsed,
                    "cpu_us_per_message": 1e6 * cpu / total, "loadavg": os.getloadavg(), **top_frames(raw)}
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = spy(args.database, args.messages)
    print(f"{result['database']}: {result['per_s']:.0f} committed/s, hub CPU "
          f"{result['cpu_us_per_message']:.0f} µs per message, "
          f"load average {[round(x, 2) for x in result['loadavg']]}")  # type: ignore[union-attr]
    for key in ("own", "inclusive"):
        print(f"-- by {key} samples")
        for share, frame in result[key]:  # type: ignore[union-attr]
            print(f"{share:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
