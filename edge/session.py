"""The node's session counter (like Sparkplug's bdSeq) and the single-agent lock.

The counter lives in ``{data_dir}/session`` and grows by one on every agent start, so a
late Last Will of an old session (``lost``) can be told apart from the state of the
current one. The file is replaced atomically (write, fsync, rename), so a power cut leaves
either the old or the new value, never a torn one.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

SESSION_FILE = "session"
LOCK_FILE = "agent.lock"


def next_session(data_dir: Path) -> int:
    """Read the last session number, store and return the next one (1 on the first start)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SESSION_FILE
    last = 0
    if path.exists():
        text = path.read_text(encoding="ascii").strip()
        try:
            last = int(text)
        except ValueError:
            log.warning("%s holds %r, not a number; starting sessions again from 1", path, text)
    session = max(last, 0) + 1
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="ascii") as f:
        f.write(f"{session}\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    _fsync_dir(data_dir)
    return session


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AgentLockError(RuntimeError):
    """Another agent already runs on the same data directory (and thus the same outbox)."""


class AgentLock:
    """An exclusive ``flock`` on ``{data_dir}/agent.lock``; the kernel drops it when the
    process dies, even by ``kill -9``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+", encoding="ascii")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise AgentLockError(f"another edge agent is running on {self.path.parent}") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
