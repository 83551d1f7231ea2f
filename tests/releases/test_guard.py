"""The guard that runs before every start (systemd ``ExecStartPre``): a release on trial that keeps
starting without being kept (a crash loop), or whose window passed, is switched back, with the
reason kept for the agent to report; nothing on trial: nothing changes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from thanthien.edge.update import guard
from thanthien.edge.update.state import Trial, UpdateState, current_version, switch_link


@pytest.fixture
def root(tmp_path) -> Path:
    for version in ("0.9.1", "0.9.2"):
        (tmp_path / "releases" / version).mkdir(parents=True)
    switch_link(tmp_path, "0.9.2")
    state = UpdateState(
        trial=Trial(
            version="0.9.2", previous="0.9.1", rollout=4, switched_at=time.time(), deadline=time.time() + 3600
        )
    )
    state.save(tmp_path)
    return tmp_path


def test_starts_within_the_limit_go_ahead_and_are_counted(root):
    assert [guard.check(root, max_starts=3) for _ in range(3)] == [None, None, None]
    assert UpdateState.load(root).trial.starts == 3
    assert current_version(root) == "0.9.2"


def test_a_crash_loop_is_rolled_back_with_the_reason(root):
    for _ in range(3):
        guard.check(root, max_starts=3)
    reason = guard.check(root, max_starts=3)
    assert reason is not None and "crash loop" in reason
    assert current_version(root) == "0.9.1"
    state = UpdateState.load(root)
    assert state.trial is None
    assert (state.result.version, state.result.state, state.result.rollout) == ("0.9.2", "rolled_back", 4)


def test_a_trial_past_its_deadline_is_rolled_back(root):
    reason = guard.check(root, now=time.time() + 7200)
    assert reason is not None and "health window" in reason
    assert current_version(root) == "0.9.1"


def test_nothing_on_trial_changes_nothing(tmp_path):
    (tmp_path / "releases" / "0.9.1").mkdir(parents=True)
    switch_link(tmp_path, "0.9.1")
    assert guard.check(tmp_path) is None
    assert current_version(tmp_path) == "0.9.1"
    assert not (tmp_path / "update-state.json").exists()


def test_the_written_guard_script_rolls_back_a_crash_loop_as_a_process(root):
    script = guard.write(root, sys.executable, max_starts=2)
    for _ in range(3):
        assert subprocess.run([str(script)], capture_output=True, check=False, timeout=60).returncode == 0
    assert current_version(root) == "0.9.1"
    assert "crash loop" in UpdateState.load(root).result.reason


def test_the_guard_script_ignores_a_checkout_beside_it(root, kit):
    """``scripts/install.sh`` copies the checkout into the update root: its ``thanthien/`` (without the
    edge package) must not shadow the release's (a release's venv, not this editable install)."""
    from releases.release_helpers import BASE
    from thanthien.edge.update.layout import Layout

    (root / "thanthien").mkdir()
    (root / "thanthien" / "__init__.py").write_text("")
    script = guard.write(root, str(Layout(kit.template).python(BASE)), max_starts=1)
    done = subprocess.run([str(script)], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert UpdateState.load(root).trial.starts == 1


def test_the_link_switch_leaves_no_moment_without_current(tmp_path):
    (tmp_path / "releases" / "a").mkdir(parents=True)
    (tmp_path / "releases" / "b").mkdir(parents=True)
    switch_link(tmp_path, "a")
    switch_link(tmp_path, "b")
    assert (tmp_path / "current").is_symlink()
    assert current_version(tmp_path) == "b"
    assert not (tmp_path / ".current.tmp").exists()
