"""Runs before every start of the agent (systemd ``ExecStartPre``, the simulator likewise), from
the release that was kept last: ``<root>/guard`` is written by that release and names its Python.

A release on trial whose agent has started ``max_starts`` times without being kept (it crashed,
hung or was killed by the watchdog: a crash loop), or whose health window passed without being
kept, is rolled back here: ``current`` points at the previous release again and the reason is kept
for the agent to report. Standard library only.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from thanthien.edge.update.state import Outcome, UpdateState, current_version, switch_link

log = logging.getLogger("thanthien.edge.update.guard")

MAX_STARTS = 3


def check(root: Path, *, max_starts: int = MAX_STARTS, now: float | None = None) -> str | None:
    """Count this start of a release on trial; roll back when it must. Returns the reason of a
    roll-back, ``None`` when the start goes ahead as it is."""
    now = time.time() if now is None else now
    state = UpdateState.load(root)
    trial = state.trial
    if trial is None or current_version(root) != trial.version:
        return None
    trial.starts += 1
    reason = None
    if trial.starts > max_starts:
        reason = (
            f"the agent of {trial.version} started {trial.starts - 1} times without passing its health "
            "window (crash loop)"
        )
    elif now > trial.deadline:
        reason = f"the health window of {trial.version} ended without the release being kept"
    if reason is None:
        state.save(root)
        return None
    switch_link(root, trial.previous)
    state.finish(
        Outcome(version=trial.version, state="rolled_back", rollout=trial.rollout, reason=reason, at=now)
    )
    state.save(root)
    log.warning("rolled back to %s: %s", trial.previous, reason)
    return reason


def write(root: Path, python: str, max_starts: int) -> Path:
    """The guard script of the release whose interpreter is ``python`` (the one kept)."""
    path = root / "guard"
    tmp = root / ".guard.tmp"
    # -I: not the script's folder first on sys.path (the update root may hold a checkout's thanthien/)
    tmp.write_text(
        f"#!{python} -I\nimport sys\nfrom pathlib import Path\n"
        "from thanthien.edge.update.guard import main\n"
        f"sys.exit(main(Path({str(root)!r}), {max_starts}))\n"
    )
    tmp.chmod(0o755)
    tmp.replace(path)
    return path


def main(root: Path, max_starts: int = MAX_STARTS) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        check(root, max_starts=max_starts)
    except Exception:  # never keep the agent from starting
        log.exception("the update guard failed")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
