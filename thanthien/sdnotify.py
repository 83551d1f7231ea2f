"""systemd's notify protocol (sd_notify) without libsystemd: READY, STOPPING, STATUS and
the watchdog keep-alive, sent as datagrams to $NOTIFY_SOCKET. Outside systemd every call
is a no-op that returns False."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def notify(message: str, socket_path: str | None = None) -> bool:
    """Send one notification such as ``READY=1`` or ``STATUS=…``; False without systemd."""
    path = socket_path or os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(message.encode(), address)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", path, exc)
            return False
    return True


def watchdog_interval() -> float | None:
    """Half of WatchdogSec as systemd passes it (WATCHDOG_USEC), or None when unset."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000


class Watchdog:
    """Pings ``WATCHDOG=1`` while ``healthy()`` holds, so a hung service gets restarted.

    A service that is alive but wedged (its MQTT loop dead, its database gone) should fail
    ``healthy`` rather than keep feeding the watchdog.
    """

    def __init__(self, healthy: Callable[[], bool], interval: float | None = None,
                 socket_path: str | None = None) -> None:
        self._healthy = healthy
        self._interval = interval if interval is not None else watchdog_interval()
        self._socket_path = socket_path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._interval is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._interval is not None
        while not self._stop.wait(self._interval):
            try:
                ok = self._healthy()
            except Exception:
                log.exception("health check failed")
                ok = False
            if ok:
                notify("WATCHDOG=1", self._socket_path)
            else:
                log.warning("unhealthy: not feeding the systemd watchdog")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
