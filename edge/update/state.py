"""The node's update state on disk (``<root>/update-state.json``), read by the agent and by the
guard that runs before each start (``guard.py``). Standard library only: the guard runs it from the
release that was kept, whatever the new one breaks.

``trial``: a release switched to and not kept yet (its version, the one before, the roll-out, how
many times the agent started on it, when the switch happened and when its health window must be
over). ``result``: the last outcome (kept, rolled_back, failed) with its reason, which the agent
reports to the hub after every connect.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "update-state.json"


@dataclass
class Trial:
    version: str
    previous: str
    rollout: int | None
    switched_at: float
    deadline: float
    starts: int = 0


@dataclass
class Outcome:
    version: str
    state: str  # kept | rolled_back | failed
    rollout: int | None
    reason: str | None
    at: float


@dataclass
class UpdateState:
    trial: Trial | None = None
    result: Outcome | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> UpdateState:
        path = root / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError):
            return cls()  # unreadable: nothing is on trial, the release in force stays
        trial = Trial(**data["trial"]) if data.get("trial") else None
        result = Outcome(**data["result"]) if data.get("result") else None
        return cls(trial=trial, result=result, history=list(data.get("history") or [])[-20:])

    def save(self, root: Path) -> None:
        path = root / STATE_FILE
        tmp = path.with_name(path.name + ".tmp")
        data = {
            "trial": asdict(self.trial) if self.trial else None,
            "result": asdict(self.result) if self.result else None,
            "history": self.history[-20:],
        }
        with open(tmp, "w") as out:
            json.dump(data, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def finish(self, outcome: Outcome) -> None:
        self.trial, self.result = None, outcome
        self.history.append(asdict(outcome))


def switch_link(root: Path, version: str) -> None:
    """Point ``<root>/current`` at ``releases/<version>`` in one rename (never a moment without it)."""
    link = root / "current"
    tmp = root / ".current.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(f"releases/{version}", tmp)
    os.replace(tmp, link)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_version(root: Path) -> str | None:
    link = root / "current"
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name
