"""The control language of a running fleet or demo town: one command per line, read from
stdin and from a control FIFO (``--control PATH``), answered with one JSON line.

    status [NODE ...]              nodes, connected, presses, outbox depth (and per-node detail)
    pause | resume                 citizens stop coming (pause waits for presses under way) / come again
    cut NODE [blackhole|reset]     drop the node's network (default blackhole: silent)
    restore NODE                   give it back
    kill NODE                      the node dies (no goodbye: the broker marks it lost)
    revive NODE                    start a killed node again on its data (outbox re-sent)
    camera NODE CAMERA MODE        e.g. camera mot-cua cam-sanh-cho black; mode ok brings it back
    mute NODE | unmute NODE        the speaker's amplifier goes dead (it still "plays") / works again
    press NODE BOX SCORE           one press now (box index from 0, score 1-4)
    stop                           stop everything (as Ctrl-C)
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import select
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from thanthien.sim.cameras import MODES as CAMERA_MODES

log = logging.getLogger(__name__)

USAGE = __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""
CUT_MODES = ("blackhole", "reset")


class ControlError(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    name: str
    args: list[str]


def parse(line: str) -> Command | None:
    """A command, ``None`` for a blank line or comment; ControlError with the reason."""
    words = line.split()
    if not words or words[0].startswith("#"):
        return None
    name, args = words[0].lower(), words[1:]
    arity = {"status": (0, 10_000), "cut": (1, 2), "restore": (1, 1), "kill": (1, 1), "revive": (1, 1),
             "mute": (1, 1), "unmute": (1, 1),
             "camera": (3, 3), "press": (3, 3), "stop": (0, 0), "help": (0, 0), "pause": (0, 0),
             "resume": (0, 0)}
    if name not in arity:
        raise ControlError(f"unknown command {name!r}; one of {', '.join(arity)}")
    low, high = arity[name]
    if not low <= len(args) <= high:
        raise ControlError(f"{name}: wrong number of arguments\n{USAGE}")
    if name == "cut" and len(args) == 2 and args[1] not in CUT_MODES:
        raise ControlError(f"cut: mode must be one of {', '.join(CUT_MODES)}")
    if name == "camera" and args[2] not in CAMERA_MODES:
        raise ControlError(f"camera: mode must be one of {', '.join(CAMERA_MODES)}")
    if name == "press" and not (args[1].isdigit() and args[2].isdigit() and 1 <= int(args[2]) <= 4):
        raise ControlError("press: BOX is a number from 0, SCORE one of 1-4")
    return Command(name, args)


Executor = Callable[[Command], dict[str, Any]]


def answer(line: str, execute: Executor, on_stop: Callable[[], None]) -> str | None:
    """Run one line; the JSON answer (``{"ok": ...}``), or None for a blank line."""
    try:
        command = parse(line)
        if command is None:
            return None
        if command.name == "help":
            return json.dumps({"ok": True, "help": USAGE}, ensure_ascii=False)
        if command.name == "stop":
            on_stop()
            return json.dumps({"ok": True, "stopping": True})
        return json.dumps({"ok": True, "result": execute(command)}, ensure_ascii=False)
    except Exception as exc:  # every failure is an answer, never a crash of the reader
        return json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False)


class ControlReader:
    """Reads command lines from stdin (if ``stdin``) and from a FIFO; answers stdin's on
    stdout and a FIFO's in the log. Threads loop on ``stop`` with a select timeout."""

    def __init__(self, execute: Executor, on_stop: Callable[[], None], stop: threading.Event, *,
                 fifo: Path | None = None, stdin: TextIO | None = None, out: TextIO | None = None) -> None:
        self.execute = execute
        self.on_stop = on_stop
        self.stop_event = stop
        self.fifo = fifo
        self.stdin = stdin
        self.out = out or sys.stdout
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> ControlReader:
        if self.stdin is not None:
            self._spawn(self._read_stdin, "control-stdin")
        if self.fifo is not None:
            if self.fifo.exists() and not self.fifo.is_fifo():
                raise ControlError(f"{self.fifo} exists and is not a FIFO")
            if not self.fifo.exists():
                os.mkfifo(self.fifo, 0o600)
            self._spawn(self._read_fifo, "control-fifo")
        return self

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _run_line(self, line: str, reply: Callable[[str], None]) -> None:
        with self._lock:
            text = answer(line, self.execute, self.on_stop)
        if text is not None:
            reply(text)

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.write(text + "\n")
            self.out.flush()

    def _read_stdin(self) -> None:
        assert self.stdin is not None
        try:
            fd = self.stdin.fileno()
        except (OSError, ValueError):
            return
        buf = b""
        while not self.stop_event.is_set():
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                return  # stdin closed: the control goes on through the FIFO only
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self._run_line(raw.decode(errors="replace"), self._say)

    def _read_fifo(self) -> None:
        assert self.fifo is not None
        # O_RDWR keeps a writer open ourselves, so the FIFO never reports end of file.
        fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        buf = b""
        try:
            while not self.stop_event.is_set():
                ready, _, _ = select.select([fd], [], [], 0.5)
                if not ready:
                    continue
                try:
                    chunk = os.read(fd, 4096)
                except OSError as exc:
                    if exc.errno == errno.EAGAIN:
                        continue
                    raise
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    self._run_line(raw.decode(errors="replace"), lambda text: log.info("control: %s", text))
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                self.fifo.unlink()

    def join(self, timeout: float = 2.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
