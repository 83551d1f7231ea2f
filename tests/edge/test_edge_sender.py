"""Re-sending the outbox: on a timer until acked, after reconnects, oldest first in
bounded batches; acks from the hub are the only thing that empties it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from edge_helpers import AckingPeer, T, edge_settings

from thanthien.edge.agent import EdgeAgent
from thanthien.edge.outbox import Outbox
from thanthien.protocol.payloads import Ack, RatingEvent, utc_now


def _rating(node: str):
    def make(event_id, seq):
        return RatingEvent(event_id=event_id, node=node, seq=seq, box="box-1", counter="quay-1",
                           score=3, pressed_at=datetime.now(UTC))
    return make


@pytest.fixture
def silent_peer(broker):
    peer = AckingPeer(broker.port, client_id="test-silent-peer", ack=False)
    yield peer
    peer.close()


def test_unacked_event_is_sent_again_on_the_timer_until_acked(tmp_path, broker, silent_peer):
    agent = EdgeAgent(edge_settings(tmp_path / "node", broker.port, resend_interval_s=0.2))
    try:
        agent.start()
        assert agent.link is not None and agent.link.wait_connected(10)
        event = agent.store_event("rating", _rating("node-a"))
        assert silent_peer.wait_received(event.event_id, times=3)
        assert agent.outbox is not None and agent.outbox.depth() == 1  # PUBACKs remove nothing
    finally:
        agent.stop()


def test_backlog_goes_out_oldest_first_in_batches_after_connecting(tmp_path, broker):
    # a node that was cut off: its outbox holds a backlog when the agent (re)starts
    with Outbox.in_dir(tmp_path / "node") as outbox:
        stored = [outbox.store("rating", _rating("node-a")) for _ in range(60)]
    settings = edge_settings(tmp_path / "node", broker.port)
    settings = settings.model_copy(update={"outbox": settings.outbox.model_copy(update={"batch_size": 7})})
    peer = AckingPeer(broker.port, client_id="test-backlog-peer")
    agent = EdgeAgent(settings)
    try:
        agent.start()
        assert peer.wait_counted(60, timeout=20)
        assert [e.event_id for e in peer.received][:60] == [s.event_id for s in stored]
        assert agent.outbox is not None and agent.outbox.wait_depth(lambda n: n == 0, timeout=5)
    finally:
        agent.stop()
        peer.close()


def test_malformed_ack_changes_nothing_and_a_valid_one_empties_the_outbox(tmp_path, broker, silent_peer):
    agent = EdgeAgent(edge_settings(tmp_path / "node", broker.port))
    try:
        agent.start()
        assert agent.link is not None and agent.link.wait_connected(10) and agent.link.subscribed.wait(10)
        event = agent.store_event("rating", _rating("node-a"))
        assert silent_peer.wait_counted(1)
        silent_peer.link.publish_confirmed(T.ack("node-a"), b'{"kind": "rating", "event_ids": []}')
        silent_peer.link.publish_confirmed(T.ack("node-a"), b"\xff not json")
        assert agent.outbox is not None and agent.outbox.depth() == 1
        ack = Ack(kind="rating", event_ids=[event.event_id], at=utc_now())
        silent_peer.link.publish_confirmed(T.ack("node-a"), ack.to_bytes())
        assert agent.outbox.wait_depth(lambda n: n == 0, timeout=5)
        assert agent.link.connected.is_set()  # the bad acks did not upset the agent
    finally:
        agent.stop()



def test_the_agent_refuses_to_store_an_event_of_a_kind_that_is_not_a_node_event(tmp_path):
    agent = EdgeAgent(edge_settings(tmp_path / "node", 1883))
    with pytest.raises(ValueError, match="unknown event kind 'telemetry'"):
        agent.store_event("telemetry", _rating("node-a"))  # type: ignore[arg-type]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def backlog_sender(tmp_path, broker, silent_peer):
    """An OutboxSender over a real broker link (nobody acks), driven by hand: a backlog of 30
    events, a window of 10, re-sends after 10 s backing off to 40 s, no jitter."""
    import threading

    from support import NODE_A, connected_link
    from thanthien.edge.sender import OutboxSender

    outbox = Outbox.in_dir(tmp_path / "node")
    stored = [outbox.store("rating", _rating("node-a")) for _ in range(30)]
    link = connected_link(broker.port, NODE_A, "node-a-window")
    clock = FakeClock()
    sender = OutboxSender(outbox, link, lambda kind: T.event(kind, node="node-a"), threading.Event(),
                          resend_interval_s=10.0, batch_size=4, max_in_flight=10, resend_max_s=40.0,
                          clock=clock, jitter=lambda: 1.0)
    yield sender, clock, [s.event_id for s in stored]
    link.stop()
    outbox.close()


def test_no_more_than_the_window_is_out_unacked_and_acks_let_the_next_events_go(backlog_sender, silent_peer):
    sender, _clock, ids = backlog_sender
    assert sender.send_due() == 10 and sender.in_flight == 10
    assert sender.send_due() == 0  # the window is full and nothing is due again yet
    sender.outbox.ack("rating", ids[:4])  # what the agent does with the hub's ack
    sender.on_acked(ids[:4])
    assert sender.send_due() == 4 and sender.in_flight == 10
    assert silent_peer.wait_counted(14)
    assert [e.event_id for e in silent_peer.received] == ids[:14]  # oldest first, each once


def test_unacked_events_are_sent_again_after_growing_delays_up_to_the_longest(backlog_sender):
    sender, clock, _ids = backlog_sender
    assert [sender.resend_delay(n) for n in (1, 2, 3, 4, 5)] == [10.0, 20.0, 40.0, 40.0, 40.0]
    sender.send_due()
    clock.now += 9.9
    assert sender.send_due() == 0
    clock.now += 0.1
    assert sender.send_due() == 10  # the window again, after 10 s
    clock.now += 19.9
    assert sender.send_due() == 0
    clock.now += 0.1
    assert sender.send_due() == 10  # then after 20 s
    assert sender.resent == 20 and sender.in_flight == 10


def test_a_reconnect_sends_the_window_again_at_once_and_the_delays_go_on_growing(backlog_sender):
    sender, clock, _ids = backlog_sender
    sender.send_due()
    sender.on_connected()  # what the agent calls after every (re)connect
    assert sender.send_due() == 10 and sender.in_flight == 10  # the same window, not the next events
    clock.now += 10.0
    assert sender.send_due() == 0  # two sends: the next comes after 20 s
    clock.now += 10.0
    assert sender.send_due() == 10
