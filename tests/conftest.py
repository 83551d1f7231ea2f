"""Test harness: a real Mosquitto with the project's config on a free loopback port.

The machine's own broker on 1883 is never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import HUB, NODE_A, NODE_B, Account, cheap_hasher, make_broker
from thanthien.broker import Broker


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A test that runs a command in-process (``setup_logging``) leaves the root logger writing to
    that test's captured stderr, closed once it ends: every later log line then failed with
    "I/O operation on closed file". The root logger's handlers and level are put back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


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


@pytest.fixture(scope="module")
def cheap_hashing() -> Iterator[None]:
    """Still argon2, with the lowest cost, so a module of many logins stays fast; the hub's own
    hasher is back after the module (``pytestmark = pytest.mark.usefixtures("cheap_hashing")``)."""
    with cheap_hasher():
        yield


# -- chaos summaries, printed at the end of the run ---------------------------------------
# A drill's report travels on its test report (user_properties), so it reaches the controller
# when pytest-xdist runs the test on a worker, and the terminal summary prints it either way.
CHAOS_PROPERTY = "chaos_report"
_CHAOS_REPORTS: list[str] = []


@pytest.fixture
def chaos_report(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Records what a chaos drill did and found; the terminal summary prints it."""

    def report(events: list[str], result: str) -> None:
        lines = [f"  - {e}" for e in events]
        text = "\n".join(["chaos drill:", *lines, f"  result: {result}"])
        request.node.user_properties.append((CHAOS_PROPERTY, text))

    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # every phase's report carries the test's properties: take them once, from the teardown
    if report.when == "teardown":
        _CHAOS_REPORTS.extend(value for name, value in report.user_properties if name == CHAOS_PROPERTY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for text in _CHAOS_REPORTS:
        terminalreporter.write_line(text)


def _group(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("xdist_group")
    if marker is None:
        return None
    return str(marker.args[0] if marker.args else marker.kwargs.get("name", ""))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The xdist groups first, the longest (``serial``: the chaos drills and the benchmarks,
    some four minutes one after another on one worker) before the others: under ``--dist
    loadgroup`` each group is one unit of work handed out in collection order, and a long one
    handed out last would run alone at the end while the other workers idle."""
    rank = {"serial": 0}
    items.sort(key=lambda item: (rank.get(group, 1) if (group := _group(item)) is not None else 2))
