"""The MQTT contract shared by the edge agent, the hub and the simulator.

Neither side imports the other; both import this package. ``topics`` builds and parses
topic names, ``payloads`` holds one pydantic model per message, ``docs`` renders the
human page (docs/protocol.md) from the same table so the two cannot drift apart.
"""

from thanthien.protocol.payloads import EventKind
from thanthien.protocol.topics import DEFAULT_ROOT, EVENT_KINDS, PROTOCOL_VERSION, Topics

__all__ = ["DEFAULT_ROOT", "EVENT_KINDS", "PROTOCOL_VERSION", "EventKind", "Topics"]
