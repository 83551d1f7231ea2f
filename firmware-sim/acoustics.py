"""What a microphone by a simulated speaker's horn hears: the node's WAV sink calls it with the
level sent in each second (``WavSink(hears=...)``) and records the answer as the level heard.

The sound reaches the microphone only while the amplifier relay is powered and the amplifier is
not muted: a level a little below the one sent (the horn, the air). Otherwise the microphone
hears the village's background, around ``noise_dbfs``. ``mute()`` is the simulator's fault "the
amplifier is dead" (demo control: ``mute NODE`` / ``unmute NODE``): the relay still clicks on,
the speaker still sends audio, nobody hears it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from thanthien.edge.audio import FLOOR_DBFS

PATH_LOSS_DB = 6.0
NOISE_DBFS = -68.0


class SimAcoustics:
    def __init__(self, amplifier_on: Callable[[], bool], *, seed: int | None = None) -> None:
        self._amplifier_on = amplifier_on
        self._muted = threading.Event()
        self._rng = random.Random(seed)

    @property
    def muted(self) -> bool:
        return self._muted.is_set()

    def mute(self) -> None:
        self._muted.set()

    def unmute(self) -> None:
        self._muted.clear()

    def __call__(self, sent_dbfs: float) -> float:
        noise = NOISE_DBFS + self._rng.uniform(-2.0, 2.0)
        if self._muted.is_set() or not self._amplifier_on() or sent_dbfs <= FLOOR_DBFS:
            return noise
        return max(noise, sent_dbfs - PATH_LOSS_DB)


def relay_pin_on(pin_factory: Callable[[], object | None], pin: int) -> Callable[[], bool]:
    """Whether the mock GPIO ``pin`` of the factory (looked up each time: the agent may be
    rebuilt) drives the amplifier relay on."""

    def on() -> bool:
        factory = pin_factory()
        if factory is None:
            return False
        return bool(factory.pin(pin).state)  # type: ignore[attr-defined]

    return on
