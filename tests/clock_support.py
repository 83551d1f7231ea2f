"""Helpers for the clock-trust tests: a node's wall clock set off from the machine's, its NTP
answer, and the hub's time beacon published over the real broker."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from thanthien.mqtt import MqttLink
from thanthien.protocol import Topics
from thanthien.protocol.payloads import HubState

T = Topics()
HOURS = 3600.0


class NodeClock:
    """The wall clock of a Pi without an RTC: the machine's time plus ``offset_s``, and what
    NTP says about it (``synced``: True, False, or None for "cannot tell")."""

    def __init__(self, offset_s: float = 0.0, synced: bool | None = False) -> None:
        self.offset_s = offset_s
        self.synced = synced

    def time(self) -> float:
        return time.time() + self.offset_s

    def ntp(self) -> bool | None:
        return self.synced

    def sync(self) -> None:
        """NTP answers: the clock is stepped to the right time and reported synchronised."""
        self.offset_s = 0.0
        self.synced = True


def beacon(link: MqttLink, at: datetime | None = None, *, retain: bool = False) -> HubState:
    """The hub's time beacon (``online`` with its time, QoS 0, not retained), as the hub's
    ``hub-time`` job sends it; ``retain`` makes it the retained presence instead."""
    state = HubState(state="online", at=at or datetime.now(UTC), version="test")
    if retain:
        link.publish_confirmed(T.hub_state(), state.to_bytes(), retain=True)
    else:
        link.publish(T.hub_state(), state.to_bytes(), qos=0)
    return state


def local_day(at: datetime, tz: str = "Asia/Ho_Chi_Minh") -> object:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(tz)).date()


def near(a: datetime, b: datetime, seconds: float = 2.0) -> bool:
    return abs(a - b) <= timedelta(seconds=seconds)
