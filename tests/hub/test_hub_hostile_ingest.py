"""Property-based: every MQTT handler of the hub takes arbitrary and mutated payloads without
crashing; whatever it refuses (invalid, or valid but claiming what the hub cannot accept) is in
dead letters with a reason, and nothing is counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from hub.hub_helpers import incoming
from thanthien.hub.db.models import DeadLetter, Rating
from thanthien.hub.ingest.table import HANDLERS
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.protocol import Topics
from thanthien.protocol.docs import examples
from thanthien.protocol.payloads import (
    CameraHealth,
    CameraThumbnail,
    ConfigStatus,
    NodeState,
    PlaybackEvent,
    RatingEvent,
    ReleaseStatus,
    Telemetry,
)
from thanthien.protocol.topics import SPEC_BY_KIND

T = Topics()
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
VALID = examples()
MODEL_OF = {"rating": RatingEvent, "node_state": NodeState, "telemetry": Telemetry,
            "camera_health": CameraHealth, "playback": PlaybackEvent, "config_status": ConfigStatus,
            "camera_thumbnail": CameraThumbnail, "release_status": ReleaseStatus}
KINDS = sorted(HANDLERS)
HYPO = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12)


@pytest.fixture
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: the property is about the handlers, whose SQL the other tests run on both."""
    return f"sqlite:///{tmp_path_factory.getbasetemp() / 'hub-sqlite.db'}"


def topic_for(kind: str, node: str = "mo-quay") -> str:
    values = {"node": node, "camera": "cam-1", "name": "x"}
    return f"{T.root}/" + SPEC_BY_KIND[kind].pattern.format(**values)


def counts(ctx) -> tuple[int, int]:
    with ctx.db.session(write=False) as s:
        return (s.scalar(select(func.count()).select_from(Rating)),
                s.scalar(select(func.count()).select_from(DeadLetter)))


def test_every_handler_has_a_model_here():
    assert set(HANDLERS) == set(MODEL_OF)


@pytest.mark.parametrize("kind", KINDS)
@HYPO
@given(raw=st.binary(min_size=1, max_size=400))
def test_arbitrary_bytes_are_dead_lettered_with_a_reason(ctx, kind, raw):
    ratings_before, dead_before = counts(ctx)
    IngestWorker(ctx).process([incoming(topic_for(kind), raw, NOW)])
    ratings_after, dead_after = counts(ctx)
    assert ratings_after == ratings_before
    assert dead_after == dead_before + 1
    with ctx.db.session(write=False) as s:
        last = s.scalars(select(DeadLetter).order_by(DeadLetter.id.desc())).first()
        assert last.reason and last.kind == kind


@pytest.mark.parametrize("kind", KINDS)
@HYPO
@given(data=st.data())
def test_mutated_payloads_are_stored_or_dead_lettered_never_crash(ctx, kind, data):
    fields = json.loads(VALID[MODEL_OF[kind]].to_bytes())
    fields["node"] = "mo-quay"
    key = data.draw(st.sampled_from(sorted(fields)))
    if data.draw(st.booleans()):
        fields[key] = data.draw(json_values)
    else:
        del fields[key]
    raw = json.dumps(fields).encode()
    try:
        MODEL_OF[kind].model_validate_json(raw)
        valid = True
    except ValueError:
        valid = False
    _, dead_before = counts(ctx)
    IngestWorker(ctx).process([incoming(topic_for(kind), raw, NOW)])
    _, dead_after = counts(ctx)
    if not valid:
        assert dead_after == dead_before + 1
    else:  # a valid payload is stored, or refused for what it claims (say, a press time ahead of NOW)
        assert dead_after in (dead_before, dead_before + 1)
        if dead_after > dead_before:
            with ctx.db.session(write=False) as s:
                reason = s.scalars(select(DeadLetter).order_by(DeadLetter.id.desc())).first().reason
            assert not reason.startswith("invalid")


@pytest.mark.parametrize("kind", [k for k in KINDS if "node" in MODEL_OF[k].model_fields])
def test_payload_speaking_for_another_node_is_dead_lettered(ctx, kind):
    fields = json.loads(VALID[MODEL_OF[kind]].to_bytes())
    fields["node"] = "someone-else"
    IngestWorker(ctx).process([incoming(topic_for(kind, "mo-quay"), json.dumps(fields).encode(), NOW)])
    with ctx.db.session(write=False) as s:
        [letter] = s.scalars(select(DeadLetter)).all()
        assert "does not match topic node" in letter.reason
