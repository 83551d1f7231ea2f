"""The rating box on MockFactory pins, through a running agent to a real Mosquitto."""

from __future__ import annotations

import random

import pytest
from edge_helpers import (
    BOX_1_PINS,
    BOX_2_PINS,
    AckingPeer,
    FakeClock,
    Outcomes,
    bouncy_press,
    edge_settings,
    glitch,
)

from thanthien.edge.agent import EdgeAgent
from thanthien.edge.devices.rating_box import RatingBoxes, ResponseGate

PINS = {"box-1": BOX_1_PINS, "box-2": BOX_2_PINS}


@pytest.fixture
def peer(broker):
    p = AckingPeer(broker.port, client_id="test-acking-peer-box")
    yield p
    p.close()


@pytest.fixture
def running(tmp_path, broker):
    """An agent with a fake clock (default 5 s response interval) and its press log."""
    clock = FakeClock()
    agent = EdgeAgent(edge_settings(tmp_path / "node", broker.port), clock=clock)
    outcomes = Outcomes()
    agent.start()
    agent.device(RatingBoxes).add_listener(outcomes)
    assert agent.link is not None and agent.link.wait_connected(10)
    yield agent, clock, outcomes
    agent.stop()


def test_200_bouncing_presses_give_exactly_the_expected_events_once_each(running, peer):
    agent, clock, outcomes = running
    factory = agent.pin_factory
    rng = random.Random(20261125)
    expected: list[tuple[str, int, bool]] = []
    box, repeats = "box-1", 0
    for i in range(200):
        repeat = i > 0 and repeats < 3 and rng.random() < 0.25
        if repeat:  # the same box again, 1 s later: inside the 5 s response interval
            clock.advance(1.0)
            repeats += 1
        else:
            clock.advance(5.0)
            box, repeats = rng.choice(sorted(PINS)), 0
        score = rng.randint(1, 4)
        glitch(factory.pin(PINS[box][rng.randint(1, 4)]))
        bouncy_press(factory.pin(PINS[box][score]), lambda n=i + 1: outcomes.wait_count(n))
        expected.append((box, score, not repeat))

    assert [(o.box, o.score, o.counted) for o in outcomes.items] == expected
    counted = [o for o in outcomes.items if o.counted]
    assert peer.wait_counted(len(counted))
    assert peer.duplicates() == 0
    assert [(e.event_id, e.box, e.score) for e in peer.received] == \
        [(o.event_id, o.box, o.score) for o in counted]
    assert [e.seq for e in peer.received] == list(range(1, len(counted) + 1))
    assert agent.stats.ignored_presses == len(expected) - len(counted)


def test_a_press_is_stored_in_the_outbox_with_event_id_and_seq(running):
    agent, _clock, outcomes = running
    bouncy_press(agent.pin_factory.pin(BOX_2_PINS[1]), lambda: outcomes.wait_count(1))
    outcome = outcomes.items[0]
    assert outcome.counted and outcome.seq == 1
    assert agent.outbox is not None and agent.outbox.contains(outcome.event_id)


def test_a_spike_shorter_than_the_bounce_time_is_not_a_press(running):
    agent, _clock, outcomes = running
    for _ in range(20):
        glitch(agent.pin_factory.pin(BOX_1_PINS[4]))
    # A real press on the same box afterwards is the first outcome, and it counts:
    # had a spike counted, this press would be second (or ignored as a repeat).
    bouncy_press(agent.pin_factory.pin(BOX_1_PINS[3]), lambda: outcomes.wait_count(1))
    assert [(o.box, o.score, o.counted) for o in outcomes.items] == [("box-1", 3, True)]


def test_repeat_press_within_the_response_interval_is_ignored_and_counted(running):
    agent, clock, outcomes = running
    pin = agent.pin_factory.pin(BOX_1_PINS[4])
    bouncy_press(pin, lambda: outcomes.wait_count(1))
    clock.advance(4.9)
    bouncy_press(pin, lambda: outcomes.wait_count(2))
    clock.advance(0.1)  # 5.0 s after the counted press
    bouncy_press(pin, lambda: outcomes.wait_count(3))
    assert [o.counted for o in outcomes.items] == [True, False, True]
    assert agent.stats.ignored_presses == 1


def test_boxes_have_their_own_response_interval(running):
    agent, _clock, outcomes = running
    bouncy_press(agent.pin_factory.pin(BOX_1_PINS[4]), lambda: outcomes.wait_count(1))
    bouncy_press(agent.pin_factory.pin(BOX_2_PINS[4]), lambda: outcomes.wait_count(2))
    assert [(o.box, o.counted) for o in outcomes.items] == [("box-1", True), ("box-2", True)]


def test_response_gate_counts_from_the_last_admitted_press_not_the_ignored_ones():
    clock = FakeClock()
    gate = ResponseGate(5.0, clock)
    assert gate.admit()
    clock.advance(3.0)
    assert not gate.admit()
    clock.advance(1.999)
    assert not gate.admit()
    clock.advance(0.001)  # 5.0 s after the admitted press, 2.0 s after an ignored one
    assert gate.admit()


def test_with_bounce_filter_off_the_first_contact_counts(tmp_path, broker):
    agent = EdgeAgent(edge_settings(tmp_path / "node", broker.port, bounce_ms=0), clock=FakeClock())
    outcomes = Outcomes()
    with agent:
        agent.device(RatingBoxes).add_listener(outcomes)
        glitch(agent.pin_factory.pin(BOX_2_PINS[2]))  # no filter: even a spike is a press
        assert outcomes.wait_count(1)
        assert [(o.box, o.score, o.counted) for o in outcomes.items] == [("box-2", 2, True)]
