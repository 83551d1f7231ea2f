"""GStreamer's RTSP server (``gst_rtsp_server.py``) as a fixture: a camera the project did not
write, run by Debian's ``/usr/bin/python3`` in its own process on a free loopback port.

Skips with the reason (and the packages to install) when Debian's Python, PyGObject or a
GStreamer element is missing; ``scripts/system-deps.sh`` installs them.
"""

from __future__ import annotations

import selectors
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SYSTEM_PYTHON = Path("/usr/bin/python3")
SERVER = Path(__file__).with_name("gst_rtsp_server.py")
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class GstServer:
    port: int

    def url(self, scene: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{scene}"


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The server's first line on stdout, waiting at most ``timeout``."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if sel.select(left):
                return proc.stdout.readline().strip()
    return ""


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()  # the server ends when its stdin closes
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(name="gst", scope="session")
def gst_fixture() -> Iterator[GstServer]:
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"GStreamer RTSP server needs Debian's {SYSTEM_PYTHON} (python3-gi)")
    proc = subprocess.Popen([str(SYSTEM_PYTHON), str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = _first_line(proc, START_TIMEOUT_S)
    if not line.startswith("READY "):
        _stop(proc)
        if line.startswith("MISSING "):
            pytest.skip(f"GStreamer RTSP server: install {line.removeprefix('MISSING ')} "
                        "(scripts/system-deps.sh)")
        pytest.fail(f"GStreamer RTSP server did not start within {START_TIMEOUT_S:g} s: {line!r}")
    try:
        yield GstServer(int(line.split()[1]))
    finally:
        _stop(proc)
