"""The node's durable outbox: events (ratings, playback reports) stored before anything
else happens with them, kept until the hub acks their event id.

SQLite in WAL mode with ``synchronous=FULL``: once :meth:`Outbox.store` returns, the event
survives ``kill -9`` and a power cut. Each event gets a UUID (the hub's dedup key together
with the node id) and a per-kind sequence number that only grows, across restarts and
acks (the hub can spot gaps). The broker's PUBACK never removes anything: Mosquitto
persists only periodic snapshots, so only the hub's application ack does.

Each event also keeps the clock facts of its creation (monotonic and wall time, boot id;
``edge/clock.py``). An event made on an untrusted clock may be stored *held*: it is not sent
(:meth:`Outbox.pending` skips it) until :meth:`Outbox.release` gives it its corrected payload.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from thanthien.protocol.payloads import Payload

if TYPE_CHECKING:
    from thanthien.edge.clock import ClockFacts

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    stored_at TEXT NOT NULL,
    mono REAL,
    wall REAL,
    boot_id TEXT,
    held INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sequences (
    kind TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class StoredEvent:
    """One event as stored: ``payload`` is exactly what goes on the wire."""

    id: int
    event_id: UUID
    kind: str
    seq: int
    payload: bytes


_ADDED_COLUMNS = (("mono", "REAL"), ("wall", "REAL"), ("boot_id", "TEXT"),
                  ("held", "INTEGER NOT NULL DEFAULT 0"))
"""Columns an outbox of an older agent lacks (added on open, in place)."""


@dataclass(frozen=True)
class HeldEvent:
    """An event waiting for a corrected time, with the clock facts of its creation."""

    id: int
    event_id: UUID
    kind: str
    payload: bytes
    mono: float | None
    wall: float | None
    boot_id: str | None


EventFactory = Callable[[UUID, int], Payload]
"""Builds the payload of a new event from its event id and sequence number."""


class Outbox:
    """Thread-safe; one connection guarded by a lock (writes are short)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        for name, decl in _ADDED_COLUMNS:
            if name not in have:
                self._db.execute(f"ALTER TABLE events ADD COLUMN {name} {decl}")

    @classmethod
    def in_dir(cls, data_dir: Path) -> Outbox:
        return cls(Path(data_dir) / OUTBOX_FILE)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("outbox is closed")
        return self._db

    def pragma(self, name: str) -> object:
        with self._lock:
            return self._conn().execute(f"PRAGMA {name}").fetchone()[0]

    def store(self, kind: str, make: EventFactory, *, facts: ClockFacts | None = None,
              held: bool = False) -> StoredEvent:
        """Allocate an event id and the next sequence number of ``kind``, build the payload
        and commit it durably, all in one transaction. ``facts``: the clock at creation;
        ``held``: not sent until :meth:`release`."""
        event_id = uuid.uuid4()
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT last_seq FROM sequences WHERE kind = ?", (kind,)).fetchone()
                seq = (row[0] if row else 0) + 1
                payload = make(event_id, seq).to_bytes()
                db.execute("INSERT INTO sequences (kind, last_seq) VALUES (?, ?) "
                           "ON CONFLICT(kind) DO UPDATE SET last_seq = excluded.last_seq", (kind, seq))
                cur = db.execute(
                    "INSERT INTO events (event_id, kind, seq, payload, stored_at, mono, wall, boot_id, held)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(event_id), kind, seq, payload, datetime.now(UTC).isoformat(),
                     facts.mono if facts else None, facts.wall if facts else None,
                     facts.boot_id if facts else None, int(held)),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._changed.notify_all()
        assert cur.lastrowid is not None
        return StoredEvent(cur.lastrowid, event_id, kind, seq, payload)

    def pending(self, limit: int | None = None, after_id: int = 0) -> list[StoredEvent]:
        """Unacked events that are not held, oldest first, starting after row ``after_id``."""
        sql = "SELECT id, event_id, kind, seq, payload FROM events WHERE id > ? AND held = 0 ORDER BY id"
        params: tuple[int, ...] = (after_id,)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        with self._lock:
            rows = self._conn().execute(sql, params).fetchall()
        return [StoredEvent(r[0], UUID(r[1]), r[2], r[3], bytes(r[4])) for r in rows]

    def held(self, limit: int = 1000) -> list[HeldEvent]:
        """Events waiting for a corrected time, oldest first."""
        with self._lock:
            rows = self._conn().execute(
                "SELECT id, event_id, kind, payload, mono, wall, boot_id FROM events WHERE held = 1 "
                "ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [HeldEvent(r[0], UUID(r[1]), r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

    def held_count(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT COUNT(*) FROM events WHERE held = 1").fetchone()[0])

    def release(self, row_id: int, payload: bytes) -> bool:
        """Give a held event its final payload and let it be sent; False if it is not held
        (acked or released meanwhile)."""
        with self._lock:
            db = self._conn()
            cur = db.execute("UPDATE events SET payload = ?, held = 0 WHERE id = ? AND held = 1",
                             (payload, row_id))
            self._changed.notify_all()
        return cur.rowcount == 1

    def depth(self, kind: str | None = None) -> int:
        """How many events wait for the hub's ack (held ones included)."""
        with self._lock:
            return self._depth(kind)

    def _depth(self, kind: str | None) -> int:
        if kind is None:
            row = self._conn().execute("SELECT COUNT(*) FROM events").fetchone()
        else:
            row = self._conn().execute("SELECT COUNT(*) FROM events WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])

    def wait_depth(self, predicate: Callable[[int], bool], timeout: float) -> bool:
        """Block until ``predicate(depth)`` holds (checked after every store and ack in this
        process) or ``timeout`` passes; e.g. ``wait_depth(lambda n: n == 0, 10)``."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self._depth(None)), timeout)

    def contains(self, event_id: UUID) -> bool:
        with self._lock:
            row = self._conn().execute("SELECT 1 FROM events WHERE event_id = ?", (str(event_id),)).fetchone()
        return row is not None

    def ack(self, kind: str, event_ids: Iterable[UUID]) -> int:
        """Drop acked events of ``kind``; unknown ids (already acked, or another kind) are
        ignored. Returns how many were removed."""
        ids = [(str(e), kind) for e in event_ids]
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.total_changes
                db.executemany("DELETE FROM events WHERE event_id = ? AND kind = ?", ids)
                removed = db.total_changes - before
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._changed.notify_all()
        return removed

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
