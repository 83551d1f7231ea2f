"""Helpers for the hub tests: a hand-moved UTC clock and settings for a temporary hub."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from thanthien.hub.settings import HubSettings


class Clock:
    """UTC 'now' that the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 09:00 in Hà Nội

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def hub_settings(tmp_path: Path, **sections: Any) -> HubSettings:
    values: dict[str, Any] = {"hub": {"data_dir": str(tmp_path / "hub")},
                              "http": {"secret_key": "test-secret-key-0123456789"}}
    for name, section in sections.items():
        values[name] = {**values.get(name, {}), **section}
    return HubSettings(**values)


