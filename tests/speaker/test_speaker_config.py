"""The ``[speakers]`` section of an edge config."""

from __future__ import annotations

import pytest

from thanthien.config import ConfigError, validate_data
from thanthien.edge.settings import EdgeSettings


def config(**speakers: object) -> dict[str, object]:
    return {"node": {"id": "node-a", "hardware": "mock"},
            "speakers": {"hub_url": "http://hub.local:8080/api/", **speakers}}


def test_speaker_section_defaults():
    s = validate_data(EdgeSettings, config())
    assert s.speakers is not None
    assert (s.speakers.relay_pin, s.speakers.warmup_s, s.speakers.volume) == (None, 1.5, 100)


def test_node_without_speakers_section_has_none():
    assert validate_data(EdgeSettings, {"node": {"id": "node-a"}}).speakers is None


def test_relay_pin_shared_with_a_button_is_refused():
    data = config(relay_pin=5)
    data["rating_boxes"] = [{"id": "box-1", "counter": "quay-1"}]  # default buttons use GPIO 5
    with pytest.raises(ConfigError) as err:
        validate_data(EdgeSettings, data)
    assert any("GPIO 5" in p for p in err.value.problems)


@pytest.mark.parametrize("bad", [{"hub_url": "ftp://hub/"}, {"warmup_s": -1}, {"relay_pin": 40},
                                 {"volume": 101}, {"loudness": 3}])
def test_bad_speaker_values_are_refused(bad: dict[str, object]):
    with pytest.raises(ConfigError) as err:
        validate_data(EdgeSettings, config(**bad))
    assert any("speakers" in p for p in err.value.problems)


def test_token_is_not_shown_in_the_settings_repr():
    s = validate_data(EdgeSettings, config(token="very-secret-token"))
    assert "very-secret-token" not in repr(s)
