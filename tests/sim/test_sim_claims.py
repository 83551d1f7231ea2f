"""The simulated nodes claim only their own boxes, counters and cameras: what the demo town and
a fleet declare to the hub is what their nodes say, so a hub that checks every claim (issue 14
item 4) refuses nothing of theirs."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from support import HUB, wait_until
from thanthien.hub.db.models import Alarm, CameraStatus, DeadLetter, Rating
from thanthien.hub.runtime import HubRuntime
from thanthien.hub.settings import HubSettings
from thanthien.sim import town
from thanthien.sim.fleet import make_specs, parse_mix, registry_declarations
from thanthien.sim.group import CitizenHabits, NodeGroup
from thanthien.sim.ledger import Ledger, read_ledger
from thanthien.sim.node import NodeSpec, SimEnv


def claims(specs: list[NodeSpec]) -> dict[str, set[tuple[str, str, str | None]]]:
    """Node -> (kind, device, counter) of what its simulated hardware reports on."""
    out: dict[str, set[tuple[str, str, str | None]]] = {}
    for s in specs:
        out[s.node_id] = {("rating_box", b.id, b.counter) for b in s.boxes} | {
            ("camera", c, None) for c in s.cameras}
    return out


def declared(registry: dict) -> dict[str, set[tuple[str, str, str | None]]]:
    """Node -> (kind, device, counter) of the boxes and cameras a hub [registry] declares."""
    return {n["id"]: {(d["kind"], d["code"], d.get("counter")) for d in n["devices"]
                      if d["kind"] in ("rating_box", "camera")} for n in registry["nodes"]}


def test_the_demo_towns_nodes_claim_only_what_its_registry_declares():
    specs = town.node_specs(dict.fromkeys(town.node_ids(), "pw"))
    registry = town.registry_declarations()
    HubSettings(registry=registry)  # a valid hub registry
    assert claims(specs) == declared(registry)


def test_a_fleets_nodes_claim_only_what_its_registry_declares():
    specs = make_specs(20, parse_mix("rating=0.5,speaker=0.3,office=0.2"), seed=3)
    assert claims(specs) == declared(registry_declarations(specs))


@pytest.fixture(scope="module")
def live(broker, tmp_path_factory):
    """A rating node, an office node (two boxes, a camera) and a speaker node of a fleet, in
    this process on the harness broker, and a hub whose registry is the fleet's."""
    tmp = tmp_path_factory.mktemp("sim-claims")
    specs = make_specs(3, parse_mix("rating=1,office=1,speaker=1"), seed=11,
                       prefix=f"c{uuid.uuid4().hex[:4]}")
    broker.add_users({s.node_id: s.password for s in specs})
    hub = HubRuntime(HubSettings(
        hub={"data_dir": str(tmp / "hub")}, http={"secret_key": "sim-test-secret-0123456789"},
        mqtt={"host": "127.0.0.1", "port": broker.port, "username": HUB.username, "password": HUB.password,
              "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        ingest={"client_id": f"hub-sim-claims-{uuid.uuid4().hex[:6]}"},
        registry=registry_declarations(specs)), roles=("ingest",))
    hub.start()
    ledger = Ledger(tmp / "ledger.jsonl")
    env = SimEnv("127.0.0.1", broker.port, tmp, ledger=ledger, keepalive_s=5, resend_s=2.0,
                 camera_interval_s=0.5, camera_publish_s=5.0)
    group = NodeGroup(specs, env, habits=CitizenHabits(press_rate=0))
    group.start()
    try:
        assert hub.link.wait_connected(10) and hub.link.subscribed.wait(10)
        assert wait_until(lambda: group.connected() == len(specs), timeout=30)
        yield hub, group, ledger, specs
    finally:
        group.stop()
        ledger.close()
        hub.stop()


def test_a_hub_that_declares_the_fleet_stores_every_press_and_camera_report_and_refuses_none(live):
    hub, group, ledger, specs = live
    nodes = {s.node_id for s in specs}  # the session broker also holds other tests' retained messages
    boxes = [(s.node_id, i) for s in specs for i in range(len(s.boxes))]
    for node_id, box in boxes:
        assert group.nodes[node_id].press(box, 4)
    assert wait_until(lambda: len(read_ledger(ledger.path)) == len(boxes), timeout=10)
    cameras = {(s.node_id, c) for s in specs for c in s.cameras}

    def arrived() -> bool:
        with hub.db.session(write=False) as s:
            ratings = s.scalar(select(func.count()).select_from(Rating).where(Rating.node_id.in_(nodes)))
            seen = {(n, c) for n, c in s.execute(select(CameraStatus.node_id, CameraStatus.camera)
                                                 .where(CameraStatus.node_id.in_(nodes)))}
        return ratings == len(boxes) and seen == cameras

    assert wait_until(arrived, timeout=30), "presses or camera reports did not reach the hub"
    with hub.db.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(DeadLetter).where(
            DeadLetter.node_id.in_(nodes))) == 0
        assert s.scalar(select(func.count()).select_from(Alarm).where(
            Alarm.kind == "claim_refused", Alarm.subject.in_(nodes))) == 0
