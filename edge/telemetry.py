"""Node vitals for the periodic telemetry message.

Everything comes from the system itself: ``/proc`` (load, memory, uptime),
``/sys/class/thermal`` (CPU temperature, where the board has a sensor),
``shutil.disk_usage`` on the data directory, and the clock's sync state from chrony
(``chronyc -c tracking``) or systemd-timesyncd (``timedatectl``). What the system cannot
tell is ``None``, never a made-up number.

``clock_offset_ms`` follows the NTP convention: reference time minus system time
(positive: the node's clock is behind).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 2.0
CPU_ZONE_HINTS = ("cpu", "soc", "x86_pkg", "core")


@dataclass(frozen=True)
class ClockState:
    synced: bool | None
    offset_ms: float | None


@dataclass(frozen=True)
class Vitals:
    uptime_s: float
    cpu_temp_c: float | None
    load_1m: float
    load_5m: float
    load_15m: float
    mem_used_pct: float
    disk_used_pct: float
    disk_free_mb: float
    clock: ClockState


# -- parsers (pure, tested on real command output) ------------------------------------
def parse_meminfo(text: str) -> float:
    """Used memory in percent: (MemTotal - MemAvailable) / MemTotal."""
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            values[name.strip()] = float(parts[0])
    total = values.get("MemTotal", 0.0)
    if total <= 0:
        return 0.0
    available = values.get("MemAvailable", values.get("MemFree", total))
    return round(min(max((total - available) / total * 100, 0.0), 100.0), 2)


def parse_chronyc_tracking(csv_line: str) -> ClockState:
    """``chronyc -c tracking``: field 5 is the system time correction in seconds (positive:
    the system clock is slow), the last field the leap status (``Normal`` when synced)."""
    fields = csv_line.strip().split(",")
    if len(fields) < 14:
        return ClockState(None, None)
    try:
        correction_s = float(fields[4])
    except ValueError:
        return ClockState(None, None)
    synced = fields[-1].strip() != "Not synchronised"
    return ClockState(synced, round(correction_s * 1000, 3))


_UNITS_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0, "min": 60_000.0}
_OFFSET_RE = re.compile(r"^\s*Offset:\s*([+-]?\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|min)\s*$", re.M)


def parse_timesync_offset(text: str) -> float | None:
    """The ``Offset:`` line of ``timedatectl timesync-status``, in milliseconds."""
    match = _OFFSET_RE.search(text)
    if match is None:
        return None
    return round(float(match.group(1)) * _UNITS_MS[match.group(2)], 3)


def parse_ntp_synchronized(text: str) -> bool | None:
    """``timedatectl show -p NTPSynchronized --value`` prints ``yes`` or ``no``."""
    value = text.strip().lower()
    return {"yes": True, "no": False}.get(value)


# -- probes ---------------------------------------------------------------------------
Runner = Callable[[list[str]], str | None]


def run_command(args: list[str]) -> str | None:
    """Stdout of a short command, or ``None`` if it is missing, fails or hangs."""
    if shutil.which(args[0]) is None:
        return None
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def clock_state(run: Runner = run_command) -> ClockState:
    out = run(["chronyc", "-c", "tracking"])
    if out:
        state = parse_chronyc_tracking(out)
        if state.synced is not None:
            return state
    synced_out = run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    synced = parse_ntp_synchronized(synced_out) if synced_out else None
    if synced is None:
        return ClockState(None, None)
    status = run(["timedatectl", "timesync-status"])
    return ClockState(synced, parse_timesync_offset(status) if status else None)


class SystemProbe:
    """Reads the vitals; the roots are parameters so tests can point them at fixtures."""

    def __init__(self, disk_path: Path, *, proc: Path = Path("/proc"),
                 thermal: Path = Path("/sys/class/thermal"), run: Runner = run_command,
                 started: float | None = None) -> None:
        self.disk_path = Path(disk_path)
        self.proc = proc
        self.thermal = thermal
        self.run = run
        self.started = time.monotonic() if started is None else started

    def cpu_temp_c(self) -> float | None:
        """The CPU's thermal zone (or the only one), in °C; ``None`` without sensors."""
        zones = sorted(self.thermal.glob("thermal_zone*")) if self.thermal.is_dir() else []
        readings: list[tuple[str, float]] = []
        for zone in zones:
            try:
                kind = (zone / "type").read_text().strip().lower()
                milli = int((zone / "temp").read_text().strip())
            except (OSError, ValueError):
                continue
            readings.append((kind, milli / 1000))
        for kind, value in readings:
            if any(hint in kind for hint in CPU_ZONE_HINTS):
                return value
        return readings[0][1] if readings else None

    def uptime_s(self) -> float:
        """System uptime from /proc/uptime; the agent's own uptime if unreadable."""
        try:
            return float((self.proc / "uptime").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return time.monotonic() - self.started

    def load(self) -> tuple[float, float, float]:
        try:
            parts = (self.proc / "loadavg").read_text().split()
            return float(parts[0]), float(parts[1]), float(parts[2])
        except (OSError, ValueError, IndexError):
            return os.getloadavg()

    def mem_used_pct(self) -> float:
        try:
            return parse_meminfo((self.proc / "meminfo").read_text())
        except OSError:
            return 0.0

    def collect(self) -> Vitals:
        disk = shutil.disk_usage(self.disk_path)
        load = self.load()
        return Vitals(
            uptime_s=round(self.uptime_s(), 1),
            cpu_temp_c=self.cpu_temp_c(),
            load_1m=load[0], load_5m=load[1], load_15m=load[2],
            mem_used_pct=self.mem_used_pct(),
            disk_used_pct=round(disk.used / disk.total * 100, 2) if disk.total else 0.0,
            disk_free_mb=round(disk.free / 1024 / 1024, 1),
            clock=clock_state(self.run),
        )


class TelemetryLoop:
    """Publishes once right after every connect and then every ``interval_s``."""

    def __init__(self, publish: Callable[[], None], stop: threading.Event, interval_s: float) -> None:
        self._publish = publish
        self.stop_event = stop
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float = 5.0) -> None:
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self.stop_event.is_set():
                break
            try:
                self._publish()
            except Exception:
                log.exception("telemetry failed; trying again next interval")
