"""Test harness: a real Mosquitto with the project's config on a free loopback port.

The machine's own broker on 1883 is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import HUB, NODE_A, NODE_B, Account, make_broker
from thanthien.broker import Broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker for the session with users hub, node-a and node-b."""
    b = make_broker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """Private brokers for tests that kill or restart theirs."""
    started: list[Broker] = []

    def factory(*accounts: Account) -> Broker:
        b = make_broker(tmp_path / f"broker{len(started)}", accounts or (HUB, NODE_A, NODE_B))
        started.append(b)
        b.start()
        return b

    yield factory
    for b in started:
        b.stop()


# -- chaos summaries, printed at the end of the run ---------------------------------------
_CHAOS_REPORTS: list[str] = []


@pytest.fixture
def chaos_report() -> Callable[..., None]:
    """Records what a chaos drill did and found; the terminal summary prints it."""

    def report(events: list[str], result: str) -> None:
        lines = [f"  - {e}" for e in events]
        _CHAOS_REPORTS.append("\n".join(["chaos drill:", *lines, f"  result: {result}"]))

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for text in _CHAOS_REPORTS:
        terminalreporter.write_line(text)
