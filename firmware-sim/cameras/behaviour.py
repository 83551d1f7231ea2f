"""What a simulated camera is doing right now, shared by its RTSP and HTTP servers and
switched at run time by tests and the fleet runner."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from thanthien.sim.cameras import pictures
from thanthien.sim.cameras.auth import Authenticator, AuthPolicy

Mode = Literal["ok", "down", "slow", "frozen", "black", "blank", "wrong_credentials", "hang", "no_video",
               "snapshot_error", "night", "dark_moving", "black_osd"]
MODES: tuple[str, ...] = Mode.__args__  # type: ignore[attr-defined]
"""ok: a moving picture · down: ports closed (connections refused) · slow: every answer
delayed · frozen: the same picture, re-encoded · black: a black picture · blank: a uniform
grey picture · wrong_credentials: the camera's password was changed, every login refused ·
hang: connections accepted, never answered · no_video: the SDP offers audio only ·
snapshot_error: the snapshot URL answers 500 · night: a still, dim room with the camera's clock
running (live) · dark_moving: a dark room with a small bright thing moving (live) · black_osd: a
covered lens, black but for the camera's running clock."""


_MOVING = {"night": pictures.night_jpeg, "dark_moving": pictures.dark_moving_jpeg,
           "black_osd": pictures.black_osd_jpeg}
"""Modes whose picture changes with every picture served (else the moving scene of ``ok``)."""


@dataclass(frozen=True)
class Request:
    protocol: Literal["rtsp", "http"]
    method: str
    authorization: str | None


class Behaviour:
    def __init__(self, policy: AuthPolicy, slow_delay_s: float, hang_up_after_401: bool = False) -> None:
        self.auth = Authenticator(policy)
        self.slow_delay_s = slow_delay_s
        self.hang_up_after_401 = hang_up_after_401
        """Close the RTSP connection after a 401, as some cameras do."""
        self._mode: Mode = "ok"
        _prepare("ok")
        self._cond = threading.Condition()
        self._closed = False
        self._frame = 0
        self._still = 0
        self.requests: list[Request] = []

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown camera mode {mode!r}; one of {', '.join(MODES)}")
        _prepare(mode)
        with self._cond:
            self._mode = mode
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def record(self, request: Request) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def before_answer(self) -> bool:
        """Called before every answer: hangs while in ``hang`` mode, waits in ``slow`` mode.
        Returns False when the connection should be dropped without an answer."""
        with self._cond:
            if self._mode == "hang":
                self._cond.wait_for(lambda: self._mode != "hang" or self._closed)
                return False
            delay = self.slow_delay_s if self._mode == "slow" else 0.0
            if delay:
                self._cond.wait_for(lambda: self._closed, timeout=delay)
            return not self._closed

    def seen(self) -> list[Request]:
        with self._cond:
            return list(self.requests)

    def wait_requests(self, n: int, timeout: float) -> bool:
        """Block until ``n`` requests have arrived in all (or ``timeout`` passes)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.requests) >= n, timeout)

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds``; True if the simulator closed meanwhile."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed, timeout=seconds)

    def refuses_logins(self) -> bool:
        return self._mode == "wrong_credentials"

    def picture(self) -> bytes:
        """The JPEG the camera would give now."""
        mode = self._mode
        if mode == "black":
            return pictures.black_jpeg()
        if mode == "blank":
            return pictures.blank_jpeg()
        with self._cond:
            self._still += 1
            self._frame += 1
            still, frame = self._still, self._frame
        if mode == "frozen":
            return pictures.still_jpeg(3 if still % 2 else 9)
        return _MOVING.get(mode, pictures.scene_jpeg)(frame)


def _prepare(mode: str) -> None:
    """Encode the mode's pictures now (once per process), not inside the first answer."""
    if mode == "black":
        pictures.black_jpeg()
    elif mode == "blank":
        pictures.blank_jpeg()
    elif mode == "frozen":
        pictures.still_jpeg(3)
        pictures.still_jpeg(9)
    else:
        _MOVING.get(mode, pictures.scene_jpeg)(0)
