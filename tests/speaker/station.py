"""A radio station on loopback: ffmpeg (a program we did not write) encodes a lavfi source to
MP3 in real time and serves it over HTTP to one listener, as an Icecast mount would; the test
kills it to cut the station off mid-slot."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import wait_until
from thanthien.broker import free_port


def listening(port: int) -> bool:
    """Whether something listens on the loopback TCP ``port`` (from /proc, without connecting:
    the station serves only its first listener)."""
    want = f":{port:04X} "
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if path.exists():
            for line in path.read_text().splitlines()[1:]:
                fields = line.split()
                if want in f"{fields[1]} " and fields[3] == "0A":  # 0A: LISTEN
                    return True
    return False


@dataclass
class Station:
    url: str
    proc: subprocess.Popen[bytes]

    def kill(self) -> None:
        """The station dies without a goodbye."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


@contextmanager
def station(source: str = "sine=frequency=440:sample_rate=22050") -> Iterator[Station]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (scripts/system-deps.sh installs it)")
    port = free_port()
    url = f"http://127.0.0.1:{port}/dai-tinh.mp3"
    proc = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f", "lavfi", "-i", source,
         "-c:a", "libmp3lame", "-b:a", "64k", "-flush_packets", "1", "-f", "mp3", "-listen", "1", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: listening(port) or proc.poll() is not None, 10), "station did not start"
        assert proc.poll() is None, "station exited at start"
        yield Station(url, proc)
    finally:
        Station(url, proc).kill()
