"""The payload models accept what the contract allows and reject everything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from thanthien.protocol import payloads as p
from thanthien.protocol.docs import examples

EXAMPLES = examples()


def _rating(**changes: object) -> bytes:
    data = json.loads(EXAMPLES[p.RatingEvent].to_bytes())
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize("model", p.ALL_PAYLOADS, ids=lambda m: m.__name__)
def test_every_payload_round_trips_through_json(model):
    original = EXAMPLES[model]
    assert p.decode(model, original.to_bytes()) == original


def test_rating_with_unknown_field_is_rejected():
    with pytest.raises(p.PayloadError, match="extra_field"):
        p.decode(p.RatingEvent, _rating(extra_field=1))


def test_rating_with_naive_timestamp_is_rejected():
    with pytest.raises(p.PayloadError, match="pressed_at"):
        p.decode(p.RatingEvent, _rating(pressed_at="2027-02-17T06:30:00"))


@pytest.mark.parametrize("score", [0, 5, -1])
def test_rating_with_out_of_range_score_is_rejected(score):
    with pytest.raises(p.PayloadError, match="score"):
        p.decode(p.RatingEvent, _rating(score=score))


def test_rating_with_malformed_event_id_is_rejected():
    with pytest.raises(p.PayloadError, match="event_id"):
        p.decode(p.RatingEvent, _rating(event_id="not-a-uuid"))


def test_node_id_with_topic_wildcard_is_rejected():
    with pytest.raises(p.PayloadError, match="node"):
        p.decode(p.RatingEvent, _rating(node="node/+"))


def test_timestamp_with_offset_is_normalised_to_utc():
    hanoi = timezone(timedelta(hours=7))
    local = datetime(2027, 2, 17, 13, 30, tzinfo=hanoi).isoformat()
    event = p.decode(p.RatingEvent, _rating(pressed_at=local))
    assert event.pressed_at == datetime(2027, 2, 17, 6, 30, tzinfo=UTC)
    assert event.pressed_at.utcoffset() == timedelta(0)


def test_oversized_payload_is_rejected_before_parsing():
    with pytest.raises(p.PayloadError, match="exceeds"):
        p.decode(p.RatingEvent, b" " * (p.MAX_PAYLOAD_BYTES + 1))


def test_non_json_payload_gets_a_readable_reason():
    with pytest.raises(p.PayloadError, match="invalid RatingEvent"):
        p.decode(p.RatingEvent, b"\xff\xfe garbage")


def test_ack_refuses_more_ids_than_the_limit():
    ids = [str(EXAMPLES[p.RatingEvent].event_id)] * (p.MAX_ACK_IDS + 1)
    raw = json.dumps({"kind": "rating", "event_ids": ids, "at": "2027-01-01T00:00:00Z"})
    with pytest.raises(p.PayloadError, match="event_ids"):
        p.decode(p.Ack, raw)


def test_plan_item_volume_is_bounded():
    data = json.loads(EXAMPLES[p.PlanItem].to_bytes())
    data["volume"] = 101
    with pytest.raises(p.PayloadError, match="volume"):
        p.decode(p.PlanItem, json.dumps(data))


def test_json_schema_exists_for_every_payload():
    schemas = p.json_schemas()
    assert set(schemas) == {m.__name__ for m in p.ALL_PAYLOADS}
    assert all(s["additionalProperties"] is False for s in schemas.values())


@pytest.mark.parametrize(("pcm", "reason"), [("not base64!", "base64"), ("AAAA", "whole 16-bit"),
                                             ("A" * 23_000, "at most")])
def test_live_frame_with_bad_audio_is_rejected(pcm, reason):
    frame = EXAMPLES[p.LiveFrame].model_dump(mode="json") | {"pcm_b64": pcm}
    with pytest.raises(p.PayloadError, match=reason):
        p.decode(p.LiveFrame, json.dumps(frame).encode())
