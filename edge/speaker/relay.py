"""The amplifier's power relay on a GPIO pin (gpiozero ``OutputDevice``).

A node without a relay (``pin=None``) gets one that only remembers its state, so the player
needs no special case.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from gpiozero import OutputDevice

if TYPE_CHECKING:
    from gpiozero import Factory

log = logging.getLogger(__name__)


class AmplifierRelay:
    def __init__(self, pin: int | None, *, active_high: bool = True,
                 pin_factory: Factory | None = None) -> None:
        self.pin = pin
        self._lock = threading.Lock()
        self._on = False
        self._device: OutputDevice | None = None
        if pin is not None:
            self._device = OutputDevice(pin, active_high=active_high, initial_value=False,
                                        pin_factory=pin_factory)

    @property
    def is_on(self) -> bool:
        return self._on

    def on(self) -> None:
        with self._lock:
            if not self._on:
                if self._device is not None:
                    self._device.on()
                self._on = True
                log.info("amplifier on (GPIO %s)", self.pin)

    def off(self) -> None:
        with self._lock:
            if self._on:
                if self._device is not None:
                    self._device.off()
                self._on = False
                log.info("amplifier off (GPIO %s)", self.pin)

    def close(self) -> None:
        """Switch off and release the pin (safe twice)."""
        self.off()
        with self._lock:
            if self._device is not None:
                self._device.close()
                self._device = None
