"""Topic builders and the parser agree for every kind in the table; the node event kinds
come from the table."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from thanthien.protocol import payloads as p
from thanthien.protocol.topics import EVENT_KINDS, SPEC_BY_KIND, SPECS, ParsedTopic, Topics, TopicSpec

T = Topics()
VALUES = {"node": "mo-quay", "camera": "cam-2", "name": "ping"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_built_topic_parses_back_to_its_kind_and_ids(spec):
    needed = {k: v for k, v in VALUES.items() if "{" + k + "}" in spec.pattern}
    topic = T.for_kind(spec.kind, **needed)
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


def test_for_kind_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown topic kind 'nope'"):
        T.for_kind("nope", node="mo-quay")


@pytest.mark.parametrize("values", [{}, {"node": "mo-quay", "camera": "cam-2"}], ids=["missing", "extra"])
def test_for_kind_refuses_values_that_are_not_the_patterns_placeholders(values):
    with pytest.raises(ValueError, match=re.escape("takes ['node']")):
        T.for_kind("telemetry", **values)


def test_event_kinds_are_the_acked_kinds_in_table_order():
    assert EVENT_KINDS == ("rating", "playback")
    assert [s.kind for s in SPECS if s.acked] == list(EVENT_KINDS)


def test_event_kind_literal_spells_the_event_kinds():
    assert get_args(p.EventKind) == EVENT_KINDS


def test_ack_kind_accepts_exactly_the_event_kinds():
    assert p.Ack.model_json_schema()["properties"]["kind"]["enum"] == list(EVENT_KINDS)


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_event_builder_gives_the_topic_of_the_kind(kind):
    topic = T.event(kind, "mo-quay")
    assert topic == T.for_kind(kind, node="mo-quay")
    assert T.parse(topic) == ParsedTopic(kind=kind, node="mo-quay")


@pytest.mark.parametrize("kind", ["telemetry", "ack", "nope"])
def test_event_builder_refuses_a_kind_that_is_not_a_node_event(kind):
    with pytest.raises(ValueError, match="not a node event kind"):
        T.event(kind, "mo-quay")


@pytest.mark.parametrize("publisher, payload", [("hub", p.RatingEvent), ("node", p.Telemetry)],
                         ids=["hub-published", "no-event-id"])
def test_only_node_events_with_an_event_id_can_be_marked_acked(publisher, payload):
    with pytest.raises(ValueError, match="only node events with an event_id are acked"):
        TopicSpec("x", "node/{node}/x", publisher, 1, False, payload, "", acked=True)


def test_spec_placeholders_are_the_patterns_variable_levels():
    assert SPEC_BY_KIND["camera_health"].placeholders == {"node", "camera"}
    assert SPEC_BY_KIND["hub_state"].placeholders == frozenset()
