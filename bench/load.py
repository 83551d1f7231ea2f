"""Load generators shared by the benchmarks: a broker with bench accounts, node messages,
a publisher process that sends them as the nodes (their own MQTT users, QoS 1) and counts
the hub's acks, and the bare baseline subscriber (paho straight into SQLite)."""

from __future__ import annotations

import json
import logging
import queue
import random
import secrets
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from thanthien.bench.common import child_processes
from thanthien.bench.hubproc import Commits, PipedProcess
from thanthien.broker import Broker
from thanthien.protocol import Topics
from thanthien.protocol.payloads import RatingEvent, Telemetry

log = logging.getLogger(__name__)

T = Topics()
SCORES = (4, 3, 2, 1)
SCORE_WEIGHTS = (0.55, 0.3, 0.1, 0.05)


@dataclass
class BenchBroker:
    broker: Broker
    passwords: dict[str, str]

    @property
    def port(self) -> int:
        return self.broker.port

    def stop(self) -> None:
        self.broker.stop()


class UnboundedBroker(Broker):
    """The project's broker config, except that QoS 1 messages for a client are queued
    without limit: the project's broker drops them once 10,000 wait for one client, and a
    benchmark's burst would be cut there (the edge outbox would re-send dropped ratings; the
    bare baseline would simply lose them). The later line of the config wins."""

    def prepare(self) -> None:
        super().prepare()
        with self.conf_path.open("a", encoding="utf-8") as conf:
            conf.write("\n# thanthien bench: no queue limit\nmax_queued_messages 0\n")


def start_broker(data_dir: Path, nodes: list[str]) -> BenchBroker:
    data_dir.mkdir(parents=True, exist_ok=True)
    broker = UnboundedBroker(data_dir, hub_user="hub")
    broker.prepare()
    passwords = {name: secrets.token_hex(8) for name in ["hub", *nodes]}
    broker.add_users(passwords)
    broker.start()
    return BenchBroker(broker, passwords)


def node_ids(n: int, prefix: str = "bench") -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(1, n + 1)]


def messages(nodes: list[str], total: int, *, telemetry_share: float = 0.25,
             seed: int = 7) -> list[tuple[str, str, bytes, str | None]]:
    """(node, topic, payload, rating event id or None) interleaved over the nodes."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    seqs = dict.fromkeys(nodes, 0)
    out: list[tuple[str, str, bytes, str | None]] = []
    for i in range(total):
        node = nodes[i % len(nodes)]
        at = now - timedelta(seconds=total - i)
        if rng.random() < telemetry_share:
            tel = Telemetry(node=node, session=1, at=at, uptime_s=100 + i, agent_version="0.1.0",
                            cpu_temp_c=48.5, load_1m=0.2, load_5m=0.2, load_15m=0.1, mem_used_pct=31,
                            disk_used_pct=40, disk_free_mb=9000, outbox_depth=0, ignored_presses=0,
                            clock_synced=True, clock_offset_ms=1.5)
            out.append((node, T.telemetry(node), tel.to_bytes(), None))
        else:
            seqs[node] += 1
            idx = nodes.index(node) if len(nodes) < 100 else int(node.rsplit("-", 1)[1]) - 1
            event = RatingEvent(event_id=uuid.uuid4(), node=node, seq=seqs[node], box="box-1",
                                counter=f"quay-{idx % 50 + 1}",
                                score=rng.choices(SCORES, SCORE_WEIGHTS)[0], pressed_at=at)
            out.append((node, T.rating(node), event.to_bytes(), str(event.event_id)))
    return out


# -- the publisher process ---------------------------------------------------------------------
def _publisher(conn: Connection, port: int, passwords: dict[str, str],
               msgs: list[tuple[str, str, bytes, str | None]]) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    acked: dict[str, float] = {}
    lock = threading.Lock()
    wanted = {m[3] for m in msgs if m[3] is not None}
    clients: dict[str, paho.Client] = {}
    ready = threading.Semaphore(0)

    def on_ack(_c: Any, _u: Any, msg: Any) -> None:
        now = time.monotonic()
        try:
            ids = json.loads(msg.payload)["event_ids"]
        except (ValueError, KeyError):
            return
        with lock:
            for event_id in ids:
                if event_id in wanted and event_id not in acked:
                    acked[event_id] = now

    def on_subscribe(*_a: Any) -> None:
        ready.release()

    for node in sorted({m[0] for m in msgs}):
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=node, protocol=paho.MQTTv5)
        client.username_pw_set(node, passwords[node])
        client.max_queued_messages_set(0)
        client.on_message = on_ack
        client.on_subscribe = on_subscribe
        client.on_connect = lambda c, _u, _f, _r, _p, n=node: c.subscribe(T.ack(n), qos=1)
        client.connect("127.0.0.1", port)
        client.loop_start()
        clients[node] = client
    for _ in clients:
        if not ready.acquire(timeout=60):
            raise RuntimeError("a publisher could not subscribe to its acks")
    conn.send("ready")
    conn.recv()  # go
    t0 = time.monotonic()
    infos = [clients[node].publish(topic, payload, qos=1) for node, topic, payload, _ in msgs]
    for info in infos:
        info.wait_for_publish(120)
    t_published = time.monotonic()
    conn.send({"t0": t0, "t_published": t_published, "unpublished": sum(not i.is_published() for i in infos)})
    while conn.recv() == "count":
        with lock:
            conn.send(len(acked))
    with lock:  # finish
        result = {"acked": len(acked), "t_last_ack": max(acked.values(), default=None), "acks": dict(acked)}
    for client in clients.values():
        client.disconnect()
        client.loop_stop()
    conn.send(result)


class Publisher:
    def __init__(self, port: int, passwords: dict[str, str],
                 msgs: list[tuple[str, str, bytes, str | None]]) -> None:
        ctx = child_processes()
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_publisher, args=(child, port, passwords, msgs), daemon=True,
                                 name="bench-publisher")
        self._proc.start()
        if not self._conn.poll(120) or self._conn.recv() != "ready":
            self._proc.kill()
            raise RuntimeError("the publisher process did not get ready")

    def go(self) -> None:
        self._conn.send("go")

    def published(self, timeout: float = 600) -> dict[str, Any]:
        if not self._conn.poll(timeout):
            raise RuntimeError("the publisher did not finish publishing")
        return self._conn.recv()

    def acked(self) -> int:
        self._conn.send("count")
        return self._conn.recv()

    def finish(self) -> dict[str, Any]:
        self._conn.send("finish")
        if not self._conn.poll(60):
            raise RuntimeError("the publisher did not answer")
        result = self._conn.recv()
        self._proc.join(10)
        return result

    def kill(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()


# -- the bare baseline ----------------------------------------------------------------------------
def _bare(conn: Connection, port: int, password: str, db_path: str, batch_size: int, flush_s: float,
          topics: list[str], keep_ids: bool) -> None:
    """paho subscriber -> queue -> one writer thread -> executemany into the database, commit
    per batch; no parsing, no validation, no acks. ``db_path`` is a SQLite file (WAL,
    synchronous=FULL like the hub) or a ``postgresql://`` URL (psycopg, the hub's driver)."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    if db_path.startswith("postgresql"):
        import psycopg

        db: Any = psycopg.connect(db_path.replace("postgresql+psycopg://", "postgresql://"))
        db.execute("CREATE TABLE IF NOT EXISTS messages (id BIGSERIAL PRIMARY KEY, topic TEXT, "
                   "payload BYTEA, received_at DOUBLE PRECISION)")
        insert = "INSERT INTO messages (topic, payload, received_at) VALUES (%s, %s, %s)"

        def write(rows: list[tuple[str, bytes, float]]) -> None:
            with db.cursor() as cur:
                cur.executemany(insert, rows)
            db.commit()
    else:
        db = sqlite3.connect(db_path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, topic TEXT, payload BLOB,"
                   " received_at REAL)")

        def write(rows: list[tuple[str, bytes, float]]) -> None:
            db.executemany("INSERT INTO messages (topic, payload, received_at) VALUES (?, ?, ?)", rows)
            db.commit()
    db.commit()
    inbox: queue.Queue[tuple[str, bytes, float]] = queue.Queue()
    commits = Commits()
    stop = threading.Event()
    subscribed = threading.Event()
    start_cpu = time.process_time()

    def writer() -> None:
        while not (stop.is_set() and inbox.empty()):
            try:
                batch = [inbox.get(timeout=0.2)]
            except queue.Empty:
                continue
            deadline = time.monotonic() + flush_s
            while len(batch) < batch_size:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(inbox.get(timeout=remaining) if remaining > 0 else inbox.get_nowait())
                except queue.Empty:
                    break
            write(batch)
            now = time.monotonic()
            commits.times.append(now)
            commits.sizes.append(len(batch))
            if keep_ids:  # the payload is the message's id (latency benchmarks)
                for _topic, payload, _at in batch:
                    commits.acked[payload.decode(errors="replace")] = now

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=paho.MQTTv5)
    client.username_pw_set("hub", password)
    client.on_message = lambda _c, _u, msg: inbox.put((msg.topic, msg.payload, time.time()))
    client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in topics])
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    subscribed.wait(30)
    conn.send({"ready": True})
    while True:
        command = conn.recv()
        if command == "stats":
            conn.send({"cpu_s": time.process_time() - start_cpu, "at": time.monotonic(),
                       "messages": commits.messages, "batches": len(commits.sizes)})
        elif command == "stop":
            client.disconnect()
            client.loop_stop()
            stop.set()
            thread.join(30)
            db.close()
            conn.send(commits)
            return


class BareSubscriber(PipedProcess):
    """The baseline: a bare paho subscriber inserting into SQLite (a path) or PostgreSQL (a
    ``postgresql`` URL), no validation."""

    what = "bare subscriber"

    def __init__(self, port: int, password: str, db_path: Path | str, *, batch_size: int = 500,
                 flush_ms: float = 20.0, topics: list[str] | None = None, keep_ids: bool = False) -> None:
        topics = topics or [T.wildcard("rating"), T.wildcard("telemetry")]
        super().__init__(_bare, (port, password, str(db_path), batch_size, flush_ms / 1000, topics,
                                 keep_ids), "bench-bare")
