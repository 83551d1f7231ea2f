"""Hysteresis of the reported camera state (pure logic, no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from thanthien.edge.cameras.check import Observation
from thanthien.edge.cameras.state import HealthTracker

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def _feed(tracker: HealthTracker, *states: str) -> list[tuple[str, bool]]:
    out = []
    for i, state in enumerate(states):
        obs = Observation(state, f"reason {i} ({state})", T0 + timedelta(seconds=10 * i))  # type: ignore[arg-type]
        verdict = tracker.observe(obs)
        out.append((verdict.health.state, verdict.changed))
    return out


def test_the_first_check_sets_the_state_at_once():
    tracker = HealthTracker("node-a", "cam-1", hold_checks=3)
    assert _feed(tracker, "down") == [("down", True)]
    assert tracker.health.since == T0


def test_a_single_failed_check_does_not_change_the_state():
    tracker = HealthTracker("node-a", "cam-1", hold_checks=2)
    result = _feed(tracker, "ok", "down", "ok", "ok")
    assert result == [("ok", True), ("ok", False), ("ok", False), ("ok", False)]


def test_a_state_is_reported_once_it_has_held_for_the_hold_count():
    tracker = HealthTracker("node-a", "cam-1", hold_checks=3)
    result = _feed(tracker, "ok", "frozen", "frozen", "frozen")
    assert result == [("ok", True), ("ok", False), ("ok", False), ("frozen", True)]
    assert tracker.health.since == T0 + timedelta(seconds=10)  # when the held run began
    assert tracker.health.reason == "reason 3 (frozen)"


def test_alternating_failures_do_not_add_up_to_a_change():
    tracker = HealthTracker("node-a", "cam-1", hold_checks=2)
    result = _feed(tracker, "ok", "down", "degraded", "down", "degraded")
    assert {state for state, _changed in result} == {"ok"}


def test_while_a_change_is_pending_the_old_reason_is_kept():
    tracker = HealthTracker("node-a", "cam-1", hold_checks=2)
    _feed(tracker, "ok", "down")
    assert (tracker.health.state, tracker.health.reason) == ("ok", "reason 0 (ok)")
    assert tracker.health.at == T0 + timedelta(seconds=10)


def test_a_new_reason_for_the_same_state_is_taken_without_a_change():
    tracker = HealthTracker("node-a", "cam-1", hold_checks=2)
    result = _feed(tracker, "down", "down")
    assert result == [("down", True), ("down", False)]
    assert tracker.health.reason == "reason 1 (down)" and tracker.health.since == T0


def test_hold_count_of_one_reports_every_change_at_once():
    tracker = HealthTracker("node-a", "cam-1", hold_checks=1)
    assert _feed(tracker, "ok", "black", "ok") == [("ok", True), ("black", True), ("ok", True)]


def test_a_hold_count_below_one_is_refused():
    with pytest.raises(ValueError, match="hold_checks"):
        HealthTracker("node-a", "cam-1", hold_checks=0)
