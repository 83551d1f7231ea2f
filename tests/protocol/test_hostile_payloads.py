"""Property-based: arbitrary and mutated bytes never escape ``decode`` as anything but a
PayloadError with a reason, for every payload model."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thanthien.protocol import payloads as p
from thanthien.protocol.docs import examples

EXAMPLES = examples()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10),
                                                                      children, max_size=5),
    max_leaves=20,
)


def _decode_or_reason(model: type[p.Payload], raw: bytes) -> str | None:
    try:
        p.decode(model, raw)
    except p.PayloadError as exc:
        assert exc.reason, "a reject must say why"
        return exc.reason
    return None


@pytest.mark.parametrize("model", p.ALL_PAYLOADS, ids=lambda m: m.__name__)
@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_are_rejected_with_a_reason(model, raw):
    reason = _decode_or_reason(model, raw)
    assert reason is None or reason.startswith(("invalid ", "payload of "))


@pytest.mark.parametrize("model", p.ALL_PAYLOADS, ids=lambda m: m.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_mutated_valid_payloads_either_validate_or_say_why(model, data):
    fields = json.loads(EXAMPLES[model].to_bytes())
    key = data.draw(st.sampled_from(sorted(fields)))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        fields[key] = data.draw(json_values)
    elif action == "delete":
        del fields[key]
    else:
        new_key = data.draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in fields))
        fields[new_key] = data.draw(json_values)
    reason = _decode_or_reason(model, json.dumps(fields).encode())
    if action == "add":
        assert reason is not None and "Extra inputs" in reason
