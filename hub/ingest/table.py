"""The routing table: topic kind -> handler, and which kinds may share a subscription."""

from __future__ import annotations

from thanthien.hub.ingest import cameras, playback, ratings, state, telemetry
from thanthien.hub.ingest.base import Handler

HANDLERS: dict[str, Handler] = {
    "rating": ratings.handle,
    "node_state": state.handle,
    "telemetry": telemetry.handle,
    "camera_health": cameras.handle,
    "playback": playback.handle,
}

SHAREABLE = frozenset({"rating", "telemetry", "playback"})
"""Kinds several ingest workers may split through an MQTT v5 shared subscription. Retained node
states are not delivered to shared subscriptions, so every worker subscribes to them."""
