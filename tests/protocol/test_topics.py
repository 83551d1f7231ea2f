"""Topic builders and the parser agree for every kind in the table."""

from __future__ import annotations

import pytest

from thanthien.protocol.topics import SPECS, Topics

T = Topics()
VALUES = {"node": "mo-quay", "camera": "cam-2", "name": "ping"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_built_topic_parses_back_to_its_kind_and_ids(spec):
    needed = {k: v for k, v in VALUES.items() if "{" + k + "}" in spec.pattern}
    topic = T._build(spec.kind, **needed)
    parsed = T.parse(topic)
    assert parsed is not None
    assert parsed.kind == spec.kind
    for key, value in needed.items():
        assert getattr(parsed, key) == value


def test_named_builders_follow_the_tree():
    assert T.rating("mo-quay") == "thanthien/v1/node/mo-quay/event/rating"
    assert T.camera_health("mo-quay", "cam-2") == "thanthien/v1/node/mo-quay/camera/cam-2/health"
    assert T.command("loa-1", "play-now") == "thanthien/v1/node/loa-1/cmd/play-now"


def test_wildcard_covers_every_node():
    assert T.wildcard("rating") == "thanthien/v1/node/+/event/rating"


@pytest.mark.parametrize("topic", [
    "other/v1/node/x/state",
    "thanthien/v1/node/x/unknown",
    "thanthien/v1/node/x/event/rating/extra",
    "thanthien/v2/node/x/state",
])
def test_unknown_topics_parse_to_none(topic):
    assert T.parse(topic) is None


@pytest.mark.parametrize("root", ["", "/abs", "trailing/", "with/+/wildcard", "hash#"])
def test_invalid_root_is_refused(root):
    with pytest.raises(ValueError, match="root"):
        Topics(root)


def test_custom_root_prefixes_every_topic():
    t = Topics("dien-bien/thanthien/v1")
    assert t.node_state("n1") == "dien-bien/thanthien/v1/node/n1/state"
    assert t.parse("dien-bien/thanthien/v1/node/n1/state").kind == "node_state"
