"""A node's own clock, set off from the machine's by a chosen offset.

A Raspberry Pi without a real-time clock that lost NTP drifts; the simulator reproduces it
with :class:`SimClock`: its wall time is the machine's plus ``offset_s``. It is handed to
the node's speaker player (which plays on the node's own clock) and it answers the agent's
``chronyc -c tracking`` probe, so the node's telemetry reports the offset as a real one
would (``clock_offset_ms``; chrony's correction is the opposite of the offset).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class SimClock:
    def __init__(self, offset_s: float = 0.0, *, synced: bool = True) -> None:
        self.offset_s = offset_s
        self.synced = synced

    def time(self) -> float:
        """Seconds since the epoch as the node believes it."""
        return time.time() + self.offset_s

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def chronyc_tracking(self) -> str:
        """One ``chronyc -c tracking`` CSV line: field 5 is the correction (positive when the
        clock is slow), the last field the leap status."""
        leap = "Normal" if self.synced else "Not synchronised"
        correction = -self.offset_s
        return (f"A29FC87B,162.159.200.123,3,{time.time():.6f},{correction:.9f},0.000000001,"
                f"0.000000002,-12.345,0.001,0.010,0.005,0.012,64.2,{leap}\n")

    def runner(self) -> Callable[[list[str]], str | None]:
        """A command runner for :class:`thanthien.edge.telemetry.SystemProbe`: answers chrony's
        tracking query from this clock and nothing else (no subprocess per telemetry)."""

        def run(args: list[str]) -> str | None:
            if args[:3] == ["chronyc", "-c", "tracking"]:
                return self.chronyc_tracking()
            return None

        return run
