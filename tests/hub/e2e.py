"""End-to-end helpers: a mock-hardware edge agent, the hub as a real process, waiting on state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import EventCollector
from thanthien.config import validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.devices.rating_box import PressOutcome, RatingBoxes
from thanthien.edge.settings import EdgeSettings

REPO = Path(__file__).resolve().parents[2]
PINS = {4: 5, 3: 6, 2: 13, 1: 19}  # the default buttons of a rating box (score -> BCM pin)




def edge_data(node_dir: Path, port: int, username: str, password: str, *, telemetry_s: float = 30.0,
              resend_s: float = 0.5) -> dict[str, Any]:
    return {
        "node": {"id": username, "hardware": "mock", "data_dir": str(node_dir)},
        "mqtt": {"host": "127.0.0.1", "port": port, "password": password, "reconnect_min_s": 0.1,
                 "reconnect_max_s": 0.5, "keepalive_s": 5},
        "telemetry": {"interval_s": telemetry_s},
        "outbox": {"resend_interval_s": resend_s},
        "audio": {"output": "null"},
        "rating_boxes": [{"id": "box-1", "counter": "quay-1", "bounce_ms": 1, "response_interval_s": 0}],
    }


class PressingAgent:
    """An in-process edge agent on MockFactory pins, pressed like a citizen would."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.agent = EdgeAgent(validate_data(EdgeSettings, data))
        self._presses = EventCollector[PressOutcome]()

    @property
    def outcomes(self) -> list[PressOutcome]:
        return self._presses.items

    def start(self) -> PressingAgent:
        self.agent.start()
        self.agent.device(RatingBoxes).add_listener(self._presses)
        return self

    def press(self, score: int) -> PressOutcome:
        pin = self.agent.pin_factory.pin(PINS[score])
        n = len(self._presses.snapshot())
        pin.drive_low()
        assert self._presses.wait_count(n + 1, 10), "press not stored"
        pin.drive_high()
        return self.outcomes[n]

    def event_ids(self) -> set:
        return {o.event_id for o in self.outcomes if o.counted}

    def outbox_depth(self) -> int:
        assert self.agent.outbox is not None
        return self.agent.outbox.depth()

    def stop(self) -> None:
        self.agent.stop()


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_toml(path: Path, data: dict[str, dict[str, Any]]) -> Path:
    """Tables of scalars only (enough for a hub config)."""
    lines = []
    for table, values in data.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_hub_process(config: Path, roles: str = "ingest,scheduler") -> subprocess.Popen[bytes]:
    """The real command line: ``python -m thanthien.cli hub serve --config FILE``; its log is
    appended to ``hub.log`` next to the config."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with (config.parent / "hub.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "thanthien.cli", "hub", "serve", "--config",
                                 str(config), "--roles", roles], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
