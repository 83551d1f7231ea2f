"""A real edge agent in its own process whose mock buttons the test presses over stdin.

    python tests/edge/press_agent.py CONFIG
    stdin:  press BOX SCORE      stdout: stored EVENT_ID SEQ  (after the outbox commit)

Used to SIGKILL an agent that holds unacked ratings.
"""

from __future__ import annotations

import queue
import sys
from pathlib import Path

from thanthien.config import load_config
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.devices.rating_box import PressOutcome, RatingBoxes
from thanthien.edge.settings import EdgeSettings
from thanthien.logs import setup_logging


def main(config: str) -> int:
    setup_logging("WARNING")
    settings = load_config(EdgeSettings, Path(config))
    agent = EdgeAgent(settings, config_path=Path(config))
    agent.start()
    outcomes: queue.Queue[PressOutcome] = queue.Queue()
    agent.device(RatingBoxes).add_listener(outcomes.put)
    print("ready", agent.session, flush=True)
    for line in sys.stdin:
        _cmd, box_id, score = line.split()
        box = next(b for b in settings.rating_boxes if b.id == box_id)
        pin = agent.pin_factory.pin(next(b.pin for b in box.buttons if b.score == int(score)))
        pin.drive_low()
        pin.drive_high()
        pin.drive_low()
        outcome = outcomes.get(timeout=10)
        pin.drive_high()
        print("stored" if outcome.counted else "ignored", outcome.event_id, outcome.seq, flush=True)
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
