"""The routing table: topic kind -> handler, and which kinds may share a subscription."""

from __future__ import annotations

from thanthien.hub.ingest import cameras, playback, ratings, state, telemetry
from thanthien.hub.ingest.base import Handler
from thanthien.protocol.topics import SPEC_BY_KIND

HANDLERS: dict[str, Handler] = {
    "rating": ratings.handle,
    "node_state": state.handle,
    "telemetry": telemetry.handle,
    "camera_health": cameras.handle,
    "playback": playback.handle,
}

SHAREABLE = frozenset(kind for kind in HANDLERS if not SPEC_BY_KIND[kind].retained)
"""Kinds several ingest workers may split through an MQTT v5 shared subscription: the ones not
retained (ratings, playback reports, telemetry). Retained node states and camera health are not
delivered to shared subscriptions, so every worker subscribes to them."""
