"""Fixtures of the speaker tests: the hub's media server on loopback and its MQTT part."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from speaker_support import Hub, MediaServer, media_server


@pytest.fixture
def hub_http() -> Iterator[MediaServer]:
    with media_server() as server:
        yield server


@pytest.fixture
def hub(broker) -> Iterator[Hub]:
    h = Hub(broker.port)
    yield h
    h.close()
