"""The devices an edge node can drive, built from its config: one module per kind of device
(``rating_box``, ``cameras``, ``speaker``), each with its ``from_settings`` factory. The
machinery a device drives stays in its feature package (``edge/cameras/`` probes,
``edge/speaker/`` player, cache and relay).

To add a kind of device, write its module here and append its ``from_settings`` to
``FACTORIES`` (see :mod:`thanthien.edge.context` for the
:class:`~thanthien.edge.context.Device` interface).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from thanthien.edge.context import Device
from thanthien.edge.devices import cameras, rating_box, speaker
from thanthien.edge.settings import EdgeSettings

DeviceFactory = Callable[[EdgeSettings], Sequence[Device]]

FACTORIES: list[DeviceFactory] = [
    rating_box.from_settings,
    cameras.from_settings,
    speaker.from_settings,
]


def build_devices(settings: EdgeSettings,
                  factories: Sequence[DeviceFactory] | None = None) -> list[Device]:
    """Every device the config asks for, in registration order (not started yet)."""
    return [device for factory in (FACTORIES if factories is None else factories)
            for device in factory(settings)]
