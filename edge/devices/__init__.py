"""The devices an edge node can drive, built from its config.

To add a kind of device, append its ``from_settings`` to ``FACTORIES`` (see
:mod:`thanthien.edge.context` for the :class:`~thanthien.edge.context.Device` interface).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from thanthien.edge.cameras import device as cameras
from thanthien.edge.context import Device
from thanthien.edge.devices import rating_box
from thanthien.edge.settings import EdgeSettings
from thanthien.edge.speaker import device as speaker

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
