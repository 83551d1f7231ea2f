"""Whether the node's wall clock may be trusted, the hub's time, and corrected event times.

Most Pis have no real-time clock: after a power cut fake-hwclock restores the last saved time
(up to an hour behind), systemd-timesyncd starts from the mtime of its clock file, and a
speaker site may have no network for hours. Only ``/run/systemd/timesync/synchronized`` (or
chrony's leap status) means "really synced". A loudspeaker must never play a scheduled
broadcast at the wrong local time, so the node asks :class:`ClockTrust` first.

**The rule.** The clock is *trusted* when

1. NTP says it is synchronised: timesyncd's flag file exists, else chrony's leap status is
   normal, else ``timedatectl`` answers ``NTPSynchronized=yes``; or
2. the hub's time is known and the clock is within ``clock.tolerance_s`` of it.

NTP answering "not synchronised" and no hub time yet: not trusted. Neither NTP nor the hub
can tell (no timesyncd, chrony or systemd: a laptop, a container): ``clock.when_unknown``
decides (``trust``, the default, or ``hold``); the hub's time overrides it as soon as it
comes. While the clock is not trusted the plan player holds scheduled broadcasts (play-now
and emergency still play), ratings wait in the outbox for a corrected time, and telemetry
says so (``clock_trusted``, ``hub_offset_ms``, ``held_broadcasts``).

**The hub's time.** The hub republishes its ``online`` presence every few seconds, not
retained, at QoS 0 (``protocol/topics.py``, ``hub_state``); the node subscribes at QoS 0, so
nothing queued while it was away arrives late, and a retained copy (which may be hours old)
is never used. Each message gives one sample ``hub_at - monotonic()`` at receipt; the
estimate is the largest of the last few (transit only ever makes a sample smaller, so this
is the least delayed one: the estimate lags the hub by the quickest transit, milliseconds on
a LAN, and one slow message does not move it). Samples are kept against the monotonic clock,
so a step of the wall clock (NTP, fake-hwclock, an operator's ``date``) shows in the offset at
once while the estimate stays; they are lost at a reboot.

``offset = hub time - wall time`` (positive: the node is behind), the NTP convention of
``clock_offset_ms``.

**Event times.** Every outbox event is stored with the monotonic time, the wall time and the
boot id (``/proc/sys/kernel/random/boot_id``) of its creation. An event made on an untrusted
clock gets the true time of that monotonic instant (:meth:`ClockTrust.true_time`: the wall
clock once NTP has it, else the hub's estimate) as soon as one is known in the same boot;
after a reboot it cannot be corrected and is sent marked ``clock_uncertain``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from thanthien.edge.telemetry import Runner, clock_state, run_command
from thanthien.protocol.payloads import Payload

log = logging.getLogger(__name__)

SYNC_FLAG = Path("/run/systemd/timesync/synchronized")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
HUB_SAMPLES = 8

WhenUnknown = Literal["trust", "hold"]
NtpProbe = Callable[[], "bool | None"]
Listener = Callable[[bool], None]

NODE_TIME_FIELDS: dict[str, tuple[str, ...]] = {"rating": ("pressed_at",), "playback": ("at",)}
"""The fields of each event kind that carry the node's clock (``scheduled_at`` is the hub's)."""

HOLD_KINDS = frozenset({"rating"})
"""Event kinds that wait in the outbox for a corrected time (a rating's day decides the
reports); a playback report goes out at once, marked uncertain if it cannot be corrected."""


def read_boot_id(path: Path = BOOT_ID) -> str:
    """This boot's id; a random one per process where the kernel does not tell (then a
    restart of the agent counts as a reboot: events of the old run become uncertain)."""
    try:
        value = path.read_text(encoding="ascii").strip()
    except OSError:
        value = ""
    return value or f"process-{uuid.uuid4()}"


def ntp_probe(flag: Path = SYNC_FLAG, run: Runner = run_command) -> NtpProbe:
    """NTP's answer: timesyncd's flag file, else chrony / ``timedatectl`` (through ``run``);
    ``False`` without the flag where timesyncd's run directory exists, ``None`` if nothing tells."""

    def probe() -> bool | None:
        if flag.exists():
            return True
        synced = clock_state(run).synced
        if synced is None and flag.parent.is_dir():
            return False
        return synced

    return probe


@dataclass(frozen=True)
class ClockFacts:
    """What the node knew of its clock when it made an event (stored with the event)."""

    mono: float
    wall: float
    boot_id: str
    trusted: bool


@dataclass(frozen=True)
class ClockView:
    """The clock's state for telemetry, commands and logs."""

    trusted: bool
    reason: Literal["ntp", "hub", "hub-offset", "unsynced", "unknown"]
    ntp_synced: bool | None
    hub_offset_s: float | None


class ClockTrust:
    """Thread-safe. ``wall`` and ``mono`` are injectable (tests run a node hours off)."""

    def __init__(self, *, tolerance_s: float = 5.0, wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic, boot_id: str | None = None,
                 ntp: NtpProbe | None = None, when_unknown: WhenUnknown = "trust",
                 samples: int = HUB_SAMPLES) -> None:
        self.tolerance_s = tolerance_s
        self.wall = wall
        self.mono = mono
        self.boot_id = boot_id if boot_id is not None else read_boot_id()
        self.when_unknown = when_unknown
        self._ntp_probe = ntp or (lambda: None)
        self._ntp: bool | None = None
        self._samples: deque[float] = deque(maxlen=samples)
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._last: bool | None = None

    # -- inputs ---------------------------------------------------------------------------
    def refresh(self) -> ClockView:
        """Read NTP's state again (subprocesses: call it from a worker, not a player loop)."""
        try:
            ntp = self._ntp_probe()
        except Exception:
            log.exception("reading the NTP state failed")
            ntp = None
        with self._lock:
            self._ntp = ntp
        return self._changed()

    def note_hub_time(self, hub_at: datetime | float) -> ClockView:
        """One live (not retained) hub time message, received now."""
        at = hub_at.timestamp() if isinstance(hub_at, datetime) else float(hub_at)
        with self._lock:
            self._samples.append(at - self.mono())
        return self._changed()

    def add_listener(self, listener: Listener) -> None:
        """Called with the new verdict whenever trust changes (on the caller's thread)."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # -- answers --------------------------------------------------------------------------
    @property
    def ntp_synced(self) -> bool | None:
        return self._ntp

    def _hub_minus_mono(self) -> float | None:
        with self._lock:
            return max(self._samples) if self._samples else None

    def hub_offset_s(self) -> float | None:
        """Hub time minus wall time now; ``None`` until the hub has been heard."""
        est = self._hub_minus_mono()
        if est is None:
            return None
        mono = self.mono()
        return est + mono - self.wall()

    def view(self) -> ClockView:
        ntp, offset = self._ntp, self.hub_offset_s()
        if ntp is True:
            return ClockView(True, "ntp", ntp, offset)
        if offset is not None:
            ok = abs(offset) < self.tolerance_s
            return ClockView(ok, "hub" if ok else "hub-offset", ntp, offset)
        if ntp is None:
            return ClockView(self.when_unknown == "trust", "unknown", ntp, offset)
        return ClockView(False, "unsynced", ntp, offset)

    def trusted(self) -> bool:
        return self.view().trusted

    def facts(self) -> ClockFacts:
        return ClockFacts(mono=self.mono(), wall=self.wall(), boot_id=self.boot_id, trusted=self.trusted())

    def true_time(self, mono: float, boot_id: str) -> float | None:
        """The true epoch time of monotonic instant ``mono`` of boot ``boot_id``: from the
        wall clock once NTP has it, else from the hub's estimate; ``None`` if neither is known
        or the instant belongs to another boot."""
        if boot_id != self.boot_id:
            return None
        if self._ntp is True:
            return self.wall() - self.mono() + mono
        est = self._hub_minus_mono()
        return None if est is None else est + mono

    def to_local(self, hub_ts: float) -> float | None:
        """A hub time (a play-now's common start) on this node's wall clock: as it is on a
        trusted clock, shifted by the offset otherwise; ``None`` if the offset is unknown."""
        view = self.view()
        if view.trusted:
            return hub_ts
        return None if view.hub_offset_s is None else hub_ts - view.hub_offset_s

    # -- changes --------------------------------------------------------------------------
    def _changed(self) -> ClockView:
        view = self.view()
        with self._lock:
            changed = view.trusted != self._last
            self._last = view.trusted
            listeners = list(self._listeners) if changed else []
        if changed:
            if view.trusted:
                log.info("clock trusted (%s%s)", view.reason, _offset_note(view.hub_offset_s))
            else:
                log.warning("clock NOT trusted (%s%s): scheduled broadcasts wait, ratings wait "
                            "for a corrected time", view.reason, _offset_note(view.hub_offset_s))
        for listener in listeners:
            try:
                listener(view.trusted)
            except Exception:
                log.exception("clock listener failed")
        return view


def _offset_note(offset: float | None) -> str:
    return "" if offset is None else f", hub time {offset:+.3f} s from the wall clock"


def retime(payload: Payload, kind: str, delta_s: float, *, uncertain: bool) -> Payload:
    """``payload`` with its node-clock fields moved by ``delta_s`` and ``clock_uncertain`` set."""
    update: dict[str, object] = {}
    for name in NODE_TIME_FIELDS.get(kind, ()):
        value = getattr(payload, name, None)
        if isinstance(value, datetime):
            update[name] = value + timedelta(seconds=delta_s)
    if "clock_uncertain" in type(payload).model_fields:
        update["clock_uncertain"] = uncertain
    return payload.model_copy(update=update)


class ClockWatch:
    """Re-reads NTP's state every ``interval_s`` (and so notices a stepped wall clock)."""

    def __init__(self, trust: ClockTrust, stop: threading.Event, interval_s: float) -> None:
        self.trust = trust
        self.stop_event = stop
        self.interval_s = interval_s
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="clock-watch", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            self.trust.refresh()
