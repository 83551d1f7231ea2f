"""Hub config: registry declarations are checked as a whole and applied at start-up."""

from __future__ import annotations

import pytest

from thanthien.config import ConfigError, validate_data
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import registry
from thanthien.hub.settings import HubSettings

DECLARED = {
    "registry": {
        "sites": [{"code": "muong-ang", "name": "UBND thị trấn Mường Ảng"}],
        "zones": [{"code": "ban-che", "name": "Bản Chè", "site": "muong-ang"}],
        "counters": [{"code": "quay-1", "name": "Quầy Tư pháp - Hộ tịch", "site": "muong-ang"}],
        "nodes": [{"id": "node-a", "name": "Bộ phận một cửa", "site": "muong-ang",
                   "devices": [{"code": "box-1", "kind": "rating_box", "counter": "quay-1"},
                               {"code": "loa-1", "kind": "speaker", "zone": "ban-che"}]}],
    }
}


def test_declared_registry_is_valid():
    settings = validate_data(HubSettings, DECLARED)
    assert settings.registry.nodes[0].devices[1].zone == "ban-che"


def test_references_to_undeclared_counters_and_zones_are_all_reported():
    data = {"registry": {"nodes": [{"id": "node-a", "devices": [
        {"code": "box-1", "kind": "rating_box", "counter": "quay-9"},
        {"code": "box-2", "kind": "rating_box"},
        {"code": "loa-1", "kind": "speaker", "zone": "ban-x"}]}]}}
    with pytest.raises(ConfigError) as err:
        validate_data(HubSettings, data)
    text = "\n".join(err.value.problems)
    assert "unknown counter 'quay-9'" in text and "needs its counter" in text
    assert "unknown zone 'ban-x'" in text


def test_declarations_are_applied_and_reapplying_changes_nothing(db):
    settings = validate_data(HubSettings, DECLARED)
    for _ in range(2):
        with db.session() as s:
            registry.apply_declarations(s, registry=settings.registry)
    with db.session() as s:
        [node] = registry.list_nodes(s, viewer=SYSTEM)
        devices = registry.list_devices(s, viewer=SYSTEM, node_id="node-a")
        assert node.registered and node.name == "Bộ phận một cửa"
        assert [(d.code, d.kind) for d in devices] == [("box-1", "rating_box"), ("loa-1", "speaker")]
        assert len(registry.list_counters(s, viewer=SYSTEM)) == 1
