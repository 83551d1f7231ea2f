"""Ratings pressed on a wrong clock: a node whose wall clock is a day off (a Pi without an RTC
after a power cut) holds them in its outbox and sends them with the right press time once it
learns the offset (the hub's time beacon, or NTP), or marks them uncertain after a reboot; on a
real Mosquitto with an acking peer in the hub's place."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clock_support import HOURS, NodeClock, beacon, local_day, near
from edge_helpers import BOX_1_PINS, BOX_2_PINS, AckingPeer, Outcomes, T, bouncy_press, edge_config

from support import HUB, NODE_A, Collector, connected_link, wait_until
from thanthien.config import validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.devices.rating_box import RatingBoxes
from thanthien.edge.settings import EdgeSettings
from thanthien.mqtt import MqttLink
from thanthien.protocol.payloads import RatingEvent, Telemetry, decode

pytestmark = pytest.mark.timeout(60)

A_DAY_BEHIND = -26 * HOURS  # always another local day, whatever the hour of the test


def settings(data_dir: Path, port: int, **clock: Any) -> EdgeSettings:
    data = edge_config(data_dir, port, response_interval_s=0, resend_interval_s=0.5)
    data["clock"] = {"check_s": 0.2, **clock}
    return validate_data(EdgeSettings, data)


class Node:
    """A started agent on ``clock`` with a listener for its presses."""

    def __init__(self, data_dir: Path, port: int, clock: NodeClock, boot_id: str = "boot-1",
                 **clock_settings: Any) -> None:
        self.clock = clock
        self.outcomes = Outcomes()
        self.agent = EdgeAgent(settings(data_dir, port, **clock_settings), wall_clock=clock.time,
                               ntp=clock.ntp, boot_id=boot_id)
        self.agent.start()
        self.agent.device(RatingBoxes).add_listener(self.outcomes)
        link = self.agent.link
        assert link is not None and link.wait_connected(10) and link.subscribed.wait(10)

    def press(self, *pins: int) -> list[datetime]:
        """Press each pin once; returns the true (machine) time of each confirmed press."""
        times = []
        for pin in pins:
            n = len(self.outcomes.items) + 1
            bouncy_press(self.agent.pin_factory.pin(pin), lambda n=n: self.outcomes.wait_count(n))
            times.append(datetime.now(UTC))
        return times

    @property
    def held(self) -> int:
        assert self.agent.outbox is not None
        return self.agent.outbox.held_count()

    def stop(self) -> None:
        self.agent.stop()


@pytest.fixture
def peer(broker) -> Iterator[AckingPeer]:
    p = AckingPeer(broker.port, client_id=f"test-clock-peer-{uuid.uuid4().hex[:6]}")
    yield p
    p.close()


@pytest.fixture
def hub(broker) -> Iterator[MqttLink]:
    link = connected_link(broker.port, HUB, f"test-clock-hub-{uuid.uuid4().hex[:6]}")
    yield link
    link.stop()


def beacon_until(hub: MqttLink, done: Any, tries: int = 5) -> bool:
    """Send the hub's time beacon until ``done(timeout)`` holds (QoS 0: one may be early)."""
    for _ in range(tries):
        beacon(hub)
        if done(2.0):
            return True
    return False


def hear_hub(hub: MqttLink, node: Node) -> bool:
    """Until the node has taken the hub's time."""
    return beacon_until(hub, lambda t: wait_until(lambda: node.agent.clock_trust.hub_offset_s() is not None,
                                                  timeout=t))


def the_rating(peer: AckingPeer) -> RatingEvent:
    """The one rating the peer counted, once it has."""
    assert peer.wait_counted(1)
    [event] = peer.counted.values()
    return event


def test_ratings_pressed_a_day_behind_are_held_then_land_on_the_right_day(tmp_path, broker, peer, hub):
    node = Node(tmp_path / "node", broker.port, NodeClock(A_DAY_BEHIND, synced=False))
    try:
        pressed = node.press(BOX_1_PINS[4], BOX_2_PINS[1], BOX_1_PINS[3])
        assert node.held == 3
        assert all(local_day(o.at) != local_day(datetime.now(UTC)) for o in node.outcomes.items)
        assert beacon_until(hub, lambda t: peer.wait_counted(3, timeout=t))
        by_seq = sorted(peer.counted.values(), key=lambda e: e.seq)
        for event, true in zip(by_seq, pressed, strict=True):
            assert near(event.pressed_at, true), (event.pressed_at, true)
            assert local_day(event.pressed_at) == local_day(true)
            assert event.clock_uncertain is False
        assert node.held == 0
    finally:
        node.stop()


def test_rating_pressed_once_the_hub_is_heard_is_corrected_at_once(tmp_path, broker, peer, hub):
    node = Node(tmp_path / "node", broker.port, NodeClock(A_DAY_BEHIND, synced=False))
    try:
        assert hear_hub(hub, node)
        [pressed] = node.press(BOX_1_PINS[2])
        assert node.held == 0
        event = the_rating(peer)
        assert near(event.pressed_at, pressed) and not event.clock_uncertain
    finally:
        node.stop()


def test_held_ratings_are_corrected_when_ntp_steps_the_clock(tmp_path, broker, peer):
    clock = NodeClock(A_DAY_BEHIND, synced=False)
    node = Node(tmp_path / "node", broker.port, clock)
    try:
        [pressed] = node.press(BOX_2_PINS[4])
        assert node.held == 1
        clock.sync()  # the clock watch (clock.check_s) notices within a fraction of a second
        event = the_rating(peer)
        assert near(event.pressed_at, pressed) and not event.clock_uncertain
    finally:
        node.stop()


def test_ratings_held_across_a_reboot_are_sent_marked_uncertain(tmp_path, broker, peer):
    clock = NodeClock(A_DAY_BEHIND, synced=False)
    first = Node(tmp_path / "node", broker.port, clock, boot_id="boot-1")
    try:
        first.press(BOX_1_PINS[1], BOX_1_PINS[4])
        node_times = [o.at for o in first.outcomes.items]
        assert first.held == 2
    finally:
        first.stop()
    second = Node(tmp_path / "node", broker.port, clock, boot_id="boot-2")  # a power cut later
    try:
        assert peer.wait_counted(2)
        events = sorted(peer.counted.values(), key=lambda e: e.seq)
        assert [e.clock_uncertain for e in events] == [True, True]
        assert [e.pressed_at for e in events] == node_times  # the node's guess, flagged
    finally:
        second.stop()


def test_a_rating_that_waited_its_hold_time_goes_out_marked_uncertain(tmp_path, broker, peer):
    node = Node(tmp_path / "node", broker.port, NodeClock(A_DAY_BEHIND, synced=False), rating_hold_s=0)
    try:
        node.press(BOX_2_PINS[2])
        event = the_rating(peer)
        assert event.clock_uncertain is True
    finally:
        node.stop()


def test_a_rating_pressed_on_a_synchronised_clock_is_sent_as_pressed(tmp_path, broker, peer):
    node = Node(tmp_path / "node", broker.port, NodeClock(0.0, synced=True))
    try:
        node.press(BOX_1_PINS[3])
        assert node.held == 0
        event = the_rating(peer)
        assert event.pressed_at == node.outcomes.items[0].at and not event.clock_uncertain
    finally:
        node.stop()


def test_a_retained_hub_state_is_not_taken_for_the_hub_time(tmp_path, broker, hub):
    stale = beacon(hub, at=datetime.fromtimestamp(datetime.now(UTC).timestamp() - 5 * HOURS, UTC),
                   retain=True)
    node = Node(tmp_path / "node", broker.port, NodeClock(0.0, synced=False))
    try:
        assert wait_until(lambda: node.agent.hub_state == stale)
        assert node.agent.clock_trust.hub_offset_s() is None
        assert not node.agent.clock_trust.trusted()
    finally:
        node.stop()
        hub.publish_confirmed(T.hub_state(), b"", retain=True)  # clear the retained state


def test_telemetry_says_the_clock_is_not_trusted_and_how_far_off_the_hub_it_is(tmp_path, broker, hub):
    seen = Collector()
    watcher = connected_link(broker.port, HUB, f"test-clock-tele-{uuid.uuid4().hex[:6]}",
                             {T.telemetry(NODE_A.username): seen})
    node = Node(tmp_path / "node", broker.port, NodeClock(-3 * HOURS, synced=False))
    try:
        assert hear_hub(hub, node)
        sent = node.agent.publish_telemetry()
        assert sent is not None
        assert seen.wait_for(lambda ms: any(decode(Telemetry, m.payload) == sent for m in ms))
        assert sent.clock_trusted is False and sent.clock_synced is False
        assert sent.hub_offset_ms == pytest.approx(3 * HOURS * 1000, abs=2000)
        assert sent.held_broadcasts is None  # no speaker on this node
    finally:
        node.stop()
        watcher.stop()


def test_ratings_wait_in_the_outbox_while_nothing_tells_the_right_time(tmp_path, broker, peer):
    node = Node(tmp_path / "node", broker.port, NodeClock(A_DAY_BEHIND, synced=False))
    try:
        node.press(BOX_1_PINS[4])
        assert node.agent.sender is not None
        assert node.agent.sender.send_due() == 0  # a whole send pass: nothing goes out
        assert node.held == 1 and node.agent.outbox is not None and node.agent.outbox.depth() == 1
    finally:
        node.stop()
