"""The routing table: topic kind -> handler, and which kinds may share a subscription."""

from __future__ import annotations

from thanthien.hub.ingest import cameras, node_reports, playback, ratings, state, telemetry
from thanthien.hub.ingest.base import Handler
from thanthien.protocol.topics import SPEC_BY_KIND

HANDLERS: dict[str, Handler] = {
    "rating": ratings.handle,
    "node_state": state.handle,
    "telemetry": telemetry.handle,
    "camera_health": cameras.handle,
    "playback": playback.handle,
    "config_status": node_reports.handle_config_status,
    "camera_thumbnail": node_reports.handle_thumbnail,
    "release_status": node_reports.handle_release_status,
}

ORDER: tuple[str, ...] = ("node_state", "camera_health", "telemetry", "rating", "playback")
"""The order in which a batch's kinds are handled, each kind once per batch (its messages in
arrival order). A node's state comes before its telemetry and camera reports (the telemetry of
a node that just came back, a camera of a node that just went away); ratings and playback
reports do not depend on a node's state. Kinds without a handler come last (dead-lettered)."""

BATCHED = frozenset({"telemetry", "rating", "playback"})
"""Kinds whose handlers work by the batch: they read what they need in one query per batch and
change node rows in memory only (they run without autoflush), so the node rows are written
together at the end of the batch, in node id order. Every other kind (node states and camera
reports, whose services write as they go, and any kind added later) runs with autoflush, and a
batch holding one locks its node rows first, in node id order."""

SHAREABLE = frozenset(kind for kind in HANDLERS if not SPEC_BY_KIND[kind].retained)
"""Kinds several ingest workers may split through an MQTT v5 shared subscription: the ones not
retained (ratings, playback reports, telemetry). Retained node states and camera health are not
delivered to shared subscriptions, so every worker subscribes to them."""
