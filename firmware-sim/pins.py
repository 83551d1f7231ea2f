"""Pressing rating-box buttons on a node's gpiozero ``MockFactory`` pins, as a citizen's
finger would: a clean press, or a bouncing contact (``citizens.press_pattern``).

Buttons are wired active low (``pull_up=True``): a pressed button drives its pin low.
Also the GPIO layout the simulator gives its boxes, so no two devices share a pin.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from gpiozero.pins.mock import MockFactory

from thanthien.sim.citizens import press_pattern

DEFAULT_PINS = {4: 5, 3: 6, 2: 13, 1: 19}
"""Score -> BCM pin of a box with the default buttons (edge.settings)."""
DEFAULT_LED = 26
RELAY_PIN = 27
MAX_BOXES = 5
"""Five boxes of four buttons and an LED fill BCM 2..26; 27 is the speaker relay."""


@dataclass(frozen=True)
class BoxPins:
    buttons: dict[int, int]  # score -> BCM pin
    led: int


def box_pins(index: int, boxes: int) -> BoxPins:
    """Pins of box ``index`` of ``boxes`` on one node: the defaults for a single box, else
    four consecutive pins per box from BCM 2 and LEDs from BCM 22."""
    if boxes > MAX_BOXES or not 0 <= index < boxes:
        raise ValueError(f"a simulated node has at most {MAX_BOXES} rating boxes")
    if boxes == 1:
        return BoxPins(dict(DEFAULT_PINS), DEFAULT_LED)
    first = 2 + 4 * index
    return BoxPins({4: first, 3: first + 1, 2: first + 2, 1: first + 3}, 22 + index)


class PinDriver:
    """Drives one node's mock pins; waits on ``stop`` (never a bare sleep) between levels."""

    def __init__(self, factory: MockFactory, stop: threading.Event) -> None:
        self.factory = factory
        self.stop_event = stop
        self._lock = threading.Lock()

    def press(self, pin: int, rng: random.Random, *, bouncy: bool, hold_s: float = 0.12) -> bool:
        """One press of the button on ``pin``; False if the simulator stopped meanwhile
        (the button is released either way)."""
        mock = self.factory.pin(pin)
        with self._lock:  # one finger per node at a time
            try:
                for pressed, seconds in press_pattern(rng, bouncy=bouncy, hold_s=hold_s):
                    if pressed:
                        mock.drive_low()
                    else:
                        mock.drive_high()
                    if seconds and self.stop_event.wait(seconds):
                        return False
            finally:
                mock.drive_high()
        return True
