"""The fleet's node specs: kinds in proportion to the mix, bad mixes refused, workers sized."""

from __future__ import annotations

from collections import Counter

import pytest

from thanthien.sim.fleet import DEFAULT_MIX, NODES_PER_WORKER, default_workers, make_specs, parse_mix


def test_kinds_follow_the_mix_and_ids_are_unique():
    specs = make_specs(500, parse_mix("rating=6,speaker=3.5,office=0.5"), seed=3, clock_skew_s=2.0)
    kinds = Counter(s.kind for s in specs)
    assert kinds == {"rating": 300, "speaker": 175, "rating+camera": 25}
    assert len({s.node_id for s in specs}) == 500 and specs[0].node_id == "sim-0001"
    assert all(abs(s.clock_offset_s) <= 2.0 for s in specs)
    assert len({s.password for s in specs}) == 500


def test_same_seed_gives_the_same_fleet_layout():
    a = make_specs(40, parse_mix("rating=1,speaker=1"), seed=9)
    b = make_specs(40, parse_mix("rating=1,speaker=1"), seed=9)
    assert [(s.node_id, s.kind, s.boxes) for s in a] == [(s.node_id, s.kind, s.boxes) for s in b]


@pytest.mark.parametrize(("text", "reason"), [("rating", "KIND=WEIGHT"), ("robot=1", "KIND=WEIGHT"),
                                              ("rating=x", "not a number"), ("rating=-1", ">= 0"),
                                              ("rating=0,speaker=0", "above 0")])
def test_bad_mix_is_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_mix(text)


def test_a_worker_holds_at_most_100_nodes():
    assert default_workers(500) == 5 and default_workers(1) == 1
    assert default_workers(NODES_PER_WORKER + 1) == 2


def test_registry_of_a_fleet_is_a_valid_hub_registry():
    import tomllib

    from thanthien.config import validate_data
    from thanthien.hub.settings import HubSettings
    from thanthien.sim.demo import to_toml
    from thanthien.sim.fleet import registry_declarations

    specs = make_specs(20, parse_mix(DEFAULT_MIX), seed=4)
    settings = validate_data(HubSettings, tomllib.loads(to_toml({"registry": registry_declarations(specs)})))
    assert [n.id for n in settings.registry.nodes] == [s.node_id for s in specs]
    kinds = {d.kind for n in settings.registry.nodes for d in n.devices}
    assert kinds == {"rating_box", "speaker", "camera"}
