"""The fleet's ledger: one JSON line per rating a simulated node durably stored, so anyone
can compare what the devices produced with what the hub stored.

A line is written from the rating box's press listener, which runs after the outbox commit
(``{"node", "event_id", "score", "pressed_at", "box", "counter", "seq"}``). Several worker
processes append to one file: each line is one ``write`` on a file opened with
``O_APPEND``, so lines never interleave.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thanthien.edge.devices.rating_box import PressOutcome

Key = tuple[str, str]  # (node, event id)


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self.written = 0

    def record(self, node: str, outcome: PressOutcome) -> None:
        """Append a counted press (ignored repeats are not ratings)."""
        if not outcome.counted or outcome.event_id is None:
            return
        line = json.dumps({"node": node, "event_id": str(outcome.event_id), "score": outcome.score,
                           "pressed_at": outcome.at.isoformat(), "box": outcome.box,
                           "counter": outcome.counter, "seq": outcome.seq}, ensure_ascii=False)
        data = (line + "\n").encode()
        with self._lock:
            if self._fd is None:
                return
            os.write(self._fd, data)
            self.written += 1

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read_ledger(path: Path) -> dict[Key, dict[str, Any]]:
    """Every entry by (node, event id); a torn last line (a killed writer) is skipped."""
    out: dict[Key, dict[str, Any]] = {}
    if not Path(path).exists():
        return out
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        out[(entry["node"], entry["event_id"])] = entry
    return out


@dataclass
class Comparison:
    """The ledger against the hub's ratings (restricted to the ledger's nodes)."""

    matched: int = 0
    missing: list[Key] = field(default_factory=list)
    """In the ledger, not at the hub (yet): still in an outbox, or lost."""
    extra: list[Key] = field(default_factory=list)
    """At the hub, not in the ledger: the ledger missed a line, or something forged a rating."""
    different: list[Key] = field(default_factory=list)
    """Both have it, but the score differs."""

    @property
    def same(self) -> bool:
        return not (self.missing or self.extra or self.different)

    def summary(self) -> str:
        return (f"{self.matched} matched, {len(self.missing)} missing at the hub, "
                f"{len(self.extra)} only at the hub, {len(self.different)} different")


def compare(ledger: dict[Key, dict[str, Any]], hub: Iterable[tuple[str, str, int]]) -> Comparison:
    """``hub`` yields (node, event id, score) of the stored ratings."""
    nodes = {node for node, _ in ledger}
    result = Comparison()
    seen: set[Key] = set()
    for node, event_id, score in hub:
        if node not in nodes:
            continue
        key = (node, str(event_id))
        seen.add(key)
        entry = ledger.get(key)
        if entry is None:
            result.extra.append(key)
        elif entry["score"] != score:
            result.different.append(key)
        else:
            result.matched += 1
    result.missing = sorted(set(ledger) - seen)
    return result


def hub_ratings(database_url: str, nodes: Iterable[str]) -> list[tuple[str, str, int]]:
    """(node, event id, score) of every rating the hub stored for ``nodes``."""
    from sqlalchemy import create_engine, select

    from thanthien.hub.db.models import Rating

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Rating.node_id, Rating.event_id, Rating.score)
                                .where(Rating.node_id.in_(sorted(set(nodes))))).all()
    finally:
        engine.dispose()
    return [(r[0], str(r[1]), int(r[2])) for r in rows]
