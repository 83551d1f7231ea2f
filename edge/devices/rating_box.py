"""The rating box: four buttons and an LED at a counter, plus the node's speaker for the
spoken thank-you.

A press counts once:

* **contact bounce / glitches** are filtered by requiring the contact to stay closed for
  ``bounce_ms``: each button's ``hold_time`` is that time and the press is taken in
  ``when_held``, which gpiozero fires only if the button was not released in between
  (every bounce restarts the wait). gpiozero's ``bounce_time`` is not used: it only
  ignores edges for a while after one, so a single short spike still counts.
* **repeat presses** on the same box within ``response_interval_s`` of the last counted
  press are ignored and counted as ignored (telemetry ``ignored_presses``).

A counted press is committed to the outbox first; only then are the LED blink and the
"Xin cảm ơn" queued for the feedback worker, so neither delays the next press nor
happens for a press that was not stored. ``pressed_at`` is when the press was confirmed, on
the node's wall clock (``context.wall_clock``); pressed while that clock is not trusted, the
agent holds the rating until it can correct the time (``edge/clock.py``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from gpiozero import LED, Button

from thanthien.edge.audio import AudioClip, AudioOutput
from thanthien.edge.context import Capability, DeviceContext
from thanthien.edge.settings import ButtonSection, EdgeSettings, RatingBoxSection
from thanthien.edge.sounds import thank_you_clip
from thanthien.protocol.payloads import RatingEvent

log = logging.getLogger(__name__)

BLINK_ON_S = 0.15
BLINK_TIMES = 3
FEEDBACK_QUEUE = 32


class ResponseGate:
    """Admits a press unless the previous admitted press was less than ``interval_s`` ago."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._last: float | None = None

    def admit(self) -> bool:
        now = self.clock()
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        return True

    def forget(self) -> None:
        """Undo the last admission (its rating could not be stored)."""
        self._last = None


@dataclass(frozen=True)
class PressOutcome:
    box: str
    counter: str
    score: int
    label: str
    counted: bool
    at: datetime
    event_id: UUID | None = None
    seq: int | None = None


Listener = Callable[[PressOutcome], None]


class FeedbackWorker:
    """Blinks LEDs and plays the thank-you, one thank-you per burst of presses."""

    def __init__(self, audio: AudioOutput, sound_dir: Path, stop: threading.Event) -> None:
        self.audio = audio
        self.sound_dir = sound_dir
        self.stop_event = stop
        self._queue: queue.Queue[_Box | None] = queue.Queue(FEEDBACK_QUEUE)
        self._thread: threading.Thread | None = None
        self._clip: AudioClip | None = None
        self.played = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rating-feedback", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, box: _Box) -> None:
        try:
            self._queue.put_nowait(box)
        except queue.Full:
            log.warning("feedback queue full; no thank-you for this press on %s", box.id)

    def close(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        self._clip = thank_you_clip(self.sound_dir)
        while not self.stop_event.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                break
            boxes = [item]
            while True:  # a burst (several boxes at once) gets one thank-you
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.stop_event.set()
                    break
                boxes.append(more)
            for box in dict.fromkeys(boxes):
                box.blink()
            try:
                self.audio.play(self._clip, stop=self.stop_event)
                self.played += 1
            except Exception:
                log.exception("thank-you could not be played")


class _Box:
    def __init__(self, cfg: RatingBoxSection, ctx: DeviceContext,
                 notify: Callable[[PressOutcome], None], feedback: FeedbackWorker) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.ctx = ctx
        self._notify = notify
        self._feedback = feedback
        self._lock = threading.Lock()
        self.gate = ResponseGate(cfg.response_interval_s, ctx.clock)
        self.counted = 0
        self.ignored = 0
        self.led: LED | None = None
        self.buttons: list[Button] = []
        try:
            if cfg.led_pin is not None:
                self.led = LED(cfg.led_pin, pin_factory=ctx.pin_factory)
            hold_s = cfg.bounce_ms / 1000
            for spec in cfg.buttons:
                button = Button(spec.pin, pull_up=True, bounce_time=None, hold_time=hold_s,
                                hold_repeat=False, pin_factory=ctx.pin_factory)
                self.buttons.append(button)
                if hold_s > 0:
                    button.when_held = self._callback(spec)
                else:
                    button.when_pressed = self._callback(spec)
        except Exception:
            self.close()
            raise

    def _callback(self, spec: ButtonSection) -> Callable[[], None]:
        def pressed() -> None:
            try:
                self.press(spec)
            except Exception:  # never let a press kill gpiozero's thread
                log.exception("press on %s GPIO %d failed", self.id, spec.pin)

        return pressed

    def press(self, spec: ButtonSection) -> PressOutcome | None:
        """A confirmed (debounced) press of one button."""
        with self._lock:
            at = datetime.fromtimestamp(self.ctx.wall_clock(), UTC)
            if not self.gate.admit():
                self.ignored += 1
                self.ctx.stats.add_ignored_press()
                outcome = PressOutcome(self.id, self.cfg.counter, spec.score, spec.label, False, at)
                log.info("%s: %s ignored (within %.1f s of the last rating)", self.id, spec.label,
                         self.cfg.response_interval_s)
                self._notify(outcome)
                return outcome
            try:
                stored = self.ctx.store_event("rating", lambda event_id, seq: RatingEvent(
                    event_id=event_id, node=self.ctx.node_id, seq=seq, box=self.id,
                    counter=self.cfg.counter, score=spec.score, pressed_at=at))
            except Exception:
                self.gate.forget()
                log.exception("%s: rating %s could not be stored", self.id, spec.label)
                return None
            self.counted += 1
        self._feedback.submit(self)  # only after the commit
        outcome = PressOutcome(self.id, self.cfg.counter, spec.score, spec.label, True, at,
                               stored.event_id, stored.seq)
        log.info("%s: %s stored as #%d %s", self.id, spec.label, stored.seq, stored.event_id)
        self._notify(outcome)
        return outcome

    def blink(self, times: int = BLINK_TIMES, on_s: float = BLINK_ON_S) -> None:
        if self.led is not None and not self.led.closed:
            self.led.blink(on_time=on_s, off_time=on_s, n=times, background=True)

    def close(self) -> None:
        for button in self.buttons:
            button.close()
        self.buttons = []
        if self.led is not None:
            self.led.close()


class RatingBoxes:
    """All rating boxes of a node, sharing one feedback worker (one speaker)."""

    name = "rating-boxes"
    capability: Capability | None = "rating_box"

    def __init__(self, boxes: list[RatingBoxSection]) -> None:
        self.configs = list(boxes)
        self.boxes: dict[str, _Box] = {}
        self._listeners: list[Listener] = []
        self._closing = threading.Event()
        self._feedback: FeedbackWorker | None = None

    def add_listener(self, listener: Listener) -> None:
        """Called with every confirmed press (counted or ignored), on gpiozero's thread."""
        self._listeners.append(listener)

    def _notify(self, outcome: PressOutcome) -> None:
        for listener in list(self._listeners):
            try:
                listener(outcome)
            except Exception:
                log.exception("press listener failed")

    @property
    def feedback(self) -> FeedbackWorker | None:
        return self._feedback

    def start(self, context: DeviceContext) -> None:
        # The feedback worker stops when this device closes (agent stop or reload).
        self._feedback = FeedbackWorker(context.audio, context.data_dir / "sounds", self._closing)
        self._feedback.start()
        try:
            for cfg in self.configs:
                self.boxes[cfg.id] = _Box(cfg, context, self._notify, self._feedback)
        except Exception:
            self.close()
            raise
        log.info("rating boxes ready: %s", ", ".join(
            f"{b.id} at {b.cfg.counter} (GPIO {[s.pin for s in b.cfg.buttons]})"
            for b in self.boxes.values()))

    def self_test(self) -> list[str]:
        """What an update's health window checks: every configured box is open, each of its buttons
        reads its pin, and the feedback worker runs."""
        problems = [f"rating box {c.id} is not open" for c in self.configs if c.id not in self.boxes]
        for box in self.boxes.values():
            for button in box.buttons:
                try:
                    button.value  # noqa: B018 - reads the pin
                except Exception as exc:
                    problems.append(f"rating box {box.id}: a button does not read its pin ({exc})")
        if self._feedback is not None and not self._feedback.alive:
            problems.append("the rating boxes' feedback worker does not run")
        return problems

    def identify(self, seconds: float, target: str | None) -> list[str]:
        chosen = [b for b in self.boxes.values() if target in (None, b.id) and b.led is not None]
        for box in chosen:
            box.blink(times=max(int(seconds * 2), 1), on_s=0.25)
        return [b.id for b in chosen]

    def close(self) -> None:
        for box in self.boxes.values():
            box.close()
        self.boxes = {}
        self._closing.set()
        if self._feedback is not None:
            self._feedback.close()


def from_settings(settings: EdgeSettings) -> list[RatingBoxes]:
    return [RatingBoxes(settings.rating_boxes)] if settings.rating_boxes else []
