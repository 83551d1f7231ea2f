"""The SQLite outbox: durable, ordered, per-kind sequence numbers, removed only by acks."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from thanthien.edge.clock import ClockFacts
from thanthien.edge.outbox import Outbox
from thanthien.protocol.payloads import RatingEvent


def rating(event_id: uuid.UUID, seq: int, score: int = 4) -> RatingEvent:
    return RatingEvent(event_id=event_id, node="node-a", seq=seq, box="box-1", counter="quay-1",
                       score=score, pressed_at=datetime.now(UTC))


@pytest.fixture
def outbox(tmp_path):
    with Outbox.in_dir(tmp_path) as box:
        yield box


def test_outbox_uses_wal_and_full_sync(outbox):
    assert outbox.pragma("journal_mode") == "wal"
    assert outbox.pragma("synchronous") == 2  # FULL


def test_stored_event_carries_its_uuid_and_next_sequence_number(outbox):
    first = outbox.store("rating", rating)
    second = outbox.store("rating", rating)
    assert (first.seq, second.seq) == (1, 2)
    assert RatingEvent.model_validate_json(second.payload).event_id == second.event_id
    assert RatingEvent.model_validate_json(second.payload).seq == 2
    assert first.event_id != second.event_id


def test_pending_is_oldest_first_and_bounded(outbox):
    stored = [outbox.store("rating", rating) for _ in range(5)]
    assert [e.event_id for e in outbox.pending(limit=3)] == [e.event_id for e in stored[:3]]
    assert [e.event_id for e in outbox.pending(after_id=stored[2].id)] == \
        [e.event_id for e in stored[3:]]


def test_ack_removes_only_the_acked_events_of_that_kind(outbox):
    a, b, c = (outbox.store("rating", rating) for _ in range(3))
    assert outbox.ack("playback", [a.event_id]) == 0
    assert outbox.ack("rating", [a.event_id, c.event_id, uuid.uuid4()]) == 2
    assert [e.event_id for e in outbox.pending()] == [b.event_id]
    assert outbox.depth() == 1


def test_sequence_keeps_growing_after_acks_and_reopen(tmp_path):
    with Outbox.in_dir(tmp_path) as box:
        events = [box.store("rating", rating) for _ in range(3)]
        box.ack("rating", [e.event_id for e in events])
    with Outbox.in_dir(tmp_path) as box:
        assert box.store("rating", rating).seq == 4
        assert box.store("playback", _playback).seq == 1  # sequences are per kind


def _playback(event_id: uuid.UUID, _seq: int):
    from thanthien.protocol.payloads import PlaybackEvent

    return PlaybackEvent(event_id=event_id, node="node-a", occurrence_id="occ-1", status="finished",
                         at=datetime.now(UTC), media_sha256="a" * 64)


def test_a_failing_payload_builder_stores_nothing_and_uses_no_sequence_number(outbox):
    def broken(event_id: uuid.UUID, seq: int) -> RatingEvent:
        return rating(event_id, seq, score=9)  # out of range: validation error

    with pytest.raises(ValueError):
        outbox.store("rating", broken)
    assert outbox.depth() == 0
    assert outbox.store("rating", rating).seq == 1


STORER = textwrap.dedent("""
    import sys, threading
    from datetime import UTC, datetime
    from pathlib import Path
    from thanthien.edge.outbox import Outbox
    from thanthien.protocol.payloads import RatingEvent
    box = Outbox.in_dir(Path(sys.argv[1]))
    for _ in range(int(sys.argv[2])):
        event = box.store("rating", lambda e, s: RatingEvent(event_id=e, node="node-a", seq=s,
            box="box-1", counter="quay-1", score=3, pressed_at=datetime.now(UTC)))
        print(event.event_id, event.seq, flush=True)
    print("done", flush=True)
    threading.Event().wait()  # hold the database open until killed
""")


@pytest.mark.chaos
def test_outbox_survives_kill_9(tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-c", STORER, str(tmp_path), "40"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    committed = []
    for line in proc.stdout:
        if line.strip() == "done":
            break
        event_id, seq = line.split()
        committed.append((uuid.UUID(event_id), int(seq)))
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert len(committed) == 40, proc.stderr.read() if proc.stderr else ""
    with Outbox.in_dir(tmp_path) as box:
        assert [(e.event_id, e.seq) for e in box.pending()] == committed
        assert box.store("rating", rating).seq == 41


# -- events held for a corrected time (edge/clock.py) --------------------------------------
FACTS = ClockFacts(mono=812.5, wall=1_800_000_000.0, boot_id="boot-1", trusted=False)


def test_held_event_is_not_sent_until_released_with_its_final_payload(outbox):
    held = outbox.store("rating", rating, facts=FACTS, held=True)
    ready = outbox.store("rating", rating)
    assert [e.event_id for e in outbox.pending()] == [ready.event_id]
    assert outbox.depth() == 2 and outbox.held_count() == 1
    [waiting] = outbox.held()
    assert (waiting.event_id, waiting.mono, waiting.wall, waiting.boot_id) == \
        (held.event_id, 812.5, 1_800_000_000.0, "boot-1")
    assert outbox.release(waiting.id, b"corrected") and not outbox.release(waiting.id, b"again")
    assert [(e.event_id, e.payload) for e in outbox.pending()] == \
        [(held.event_id, b"corrected"), (ready.event_id, ready.payload)]


def test_outbox_of_an_older_agent_gains_the_clock_columns_and_keeps_its_events(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL, stored_at TEXT NOT NULL);
        CREATE TABLE sequences (kind TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
        INSERT INTO events (event_id, kind, seq, payload, stored_at)
            VALUES ('0b9e5c1e-6f8a-4b52-9d0e-2f4b8f0f6a11', 'rating', 1, x'7b7d', '2026-01-01T00:00');
        INSERT INTO sequences VALUES ('rating', 1);
    """)
    old.close()
    with Outbox(path) as box:
        assert [e.seq for e in box.pending()] == [1] and box.held_count() == 0
        assert box.store("rating", rating, facts=FACTS, held=True).seq == 2
