"""The fleet runs the real edge agents in worker processes against the real broker and hub:
what the nodes stored (the ledger) is what the hub stored, through cuts and kills."""

from __future__ import annotations

import json
import uuid

import pytest
from sim_helpers import node_state, rating_count, start_hub

from support import wait_until
from thanthien.sim.fleet import Fleet, FleetOptions, broker_users, make_specs, parse_mix
from thanthien.sim.group import CitizenHabits
from thanthien.sim.ledger import compare, hub_ratings, read_ledger

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def setup(broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    specs = make_specs(4, parse_mix("rating=3,office=1"), seed=5, prefix=f"f{uuid.uuid4().hex[:4]}")
    broker.add_users(broker_users(specs))
    hub = start_hub(tmp, broker.port)
    ledger = tmp / "ledger.jsonl"
    options = FleetOptions(broker_port=broker.port, data_root=tmp / "fleet", ledger=ledger, workers=2,
                           habits=CitizenHabits(press_rate=40, repeat_probability=0.2), faultable=4, seed=5,
                           env={"keepalive_s": 5, "resend_s": 2.0, "camera_interval_s": 1.0})
    fleet = Fleet(specs, options)
    fleet.start()
    try:
        assert fleet.wait_connected(timeout=60), fleet.apply("status", [])
        yield fleet, hub, ledger, {s.node_id for s in specs}
    finally:
        fleet.stop()
        hub.stop()


def _compare(hub, ledger, nodes):
    entries = {k: v for k, v in read_ledger(ledger).items() if k[0] in nodes}
    return compare(entries, hub_ratings(hub.settings.database_url, nodes))


def test_the_ledger_and_the_hub_hold_the_same_ratings(setup):
    fleet, hub, ledger, nodes = setup
    assert wait_until(lambda: len(read_ledger(ledger)) >= 8, timeout=40), "citizens pressed too little"
    assert fleet.apply("pause", [])["idle"]
    try:
        entries = read_ledger(ledger)
        assert wait_until(lambda: rating_count(hub, nodes) >= len(entries), timeout=30)
        result = compare(entries, hub_ratings(hub.settings.database_url, nodes))
        assert result.same, result.summary()
        assert result.matched == len(entries)
        assert wait_until(lambda: fleet.apply("status", [])["outbox"] == 0, timeout=20)
    finally:
        fleet.apply("resume", [])


@pytest.mark.parametrize("mode", ["reset", "blackhole"])
def test_a_cut_nodes_ratings_reach_the_hub_after_the_cut_ends(setup, mode):
    fleet, hub, ledger, nodes = setup
    node = sorted(nodes)[0 if mode == "reset" else 2]
    fleet.apply("pause", [])
    try:
        fleet.apply("cut", [node, mode])
        if mode == "reset":
            assert wait_until(lambda: not fleet.apply("status", [node])["detail"][0]["connected"], timeout=10)
        before = rating_count(hub, {node})
        stored = len([k for k in read_ledger(ledger) if k[0] == node])

        def press_until_counted() -> bool:  # the box ignores presses within 5 s of the last one
            fleet.apply("press", [node, "0", "1"])
            return len([k for k in read_ledger(ledger) if k[0] == node]) > stored

        assert wait_until(press_until_counted, timeout=15, every=1.0)
        assert fleet.apply("status", [node])["detail"][0]["outbox"] >= 1
        assert rating_count(hub, {node}) == before  # nothing got through the cut
        fleet.apply("restore", [node])
        assert wait_until(lambda: fleet.apply("status", [node])["detail"][0]["outbox"] == 0, timeout=40)
        result = _compare(hub, ledger, {node})
        assert result.same, result.summary()
    finally:
        fleet.apply("restore", [node])
        fleet.apply("resume", [])


def test_a_killed_node_shows_lost_and_is_online_again_when_revived(setup):
    fleet, hub, _ledger, nodes = setup
    node = sorted(nodes)[1]
    assert wait_until(lambda: node_state(hub, node) == "online", timeout=20)
    fleet.apply("kill", [node])
    assert wait_until(lambda: node_state(hub, node) == "lost", timeout=15)
    detail = fleet.apply("status", [node])["detail"][0]
    assert detail["killed"] and not detail["connected"]
    fleet.apply("revive", [node])
    assert wait_until(lambda: node_state(hub, node) == "online", timeout=20)


def test_a_rating_stored_before_a_kill_reaches_the_hub_after_the_revival(setup):
    fleet, hub, ledger, nodes = setup
    node = sorted(nodes)[3]
    fleet.apply("pause", [])
    try:
        fleet.apply("cut", [node, "reset"])  # the rating cannot leave before the node dies
        stored = len([k for k in read_ledger(ledger) if k[0] == node])

        def press_until_counted() -> bool:
            fleet.apply("press", [node, "0", "3"])
            return len([k for k in read_ledger(ledger) if k[0] == node]) > stored

        assert wait_until(press_until_counted, timeout=15, every=1.0)
        fleet.apply("kill", [node])
        assert not _compare(hub, ledger, {node}).same  # it died with the rating in its outbox
        fleet.apply("revive", [node])
        assert wait_until(lambda: _compare(hub, ledger, {node}).same, timeout=30)
    finally:
        fleet.apply("restore", [node])
        fleet.apply("resume", [])


def test_a_camera_turned_black_is_reported_black(setup, broker):
    from support import HUB, Collector, connected_link
    from thanthien.protocol import Topics

    fleet, _hub, _ledger, nodes = setup
    office = next(d["node"] for d in fleet.apply("status", sorted(nodes))["detail"] if d["cameras"])
    topic = Topics().camera_health(office, "cam-1")
    health = Collector()
    link = connected_link(broker.port, HUB, f"hub-watch-{office}", {topic: health})
    try:
        fleet.apply("camera", [office, "cam-1", "black"])
        assert health.wait_for(lambda ms: any(json.loads(m.payload).get("state") == "black" for m in ms),
                               timeout=30)
    finally:
        fleet.apply("camera", [office, "cam-1", "ok"])
        link.stop()
