"""A hub killed (SIGKILL) while it hands notices to gammu-smsd, then started again: every
message reaches the modem daemon exactly once (SQLite and PostgreSQL)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hub.e2e import write_toml

from notify.notify_helpers import messages, new_dossier, notify_ctx
from support import wait_until

HERE = Path(__file__).resolve().parent
N = 40


@pytest.mark.slow
def test_a_hub_killed_while_dispatching_hands_every_message_over_exactly_once(
    db, db_url, clock, tmp_path, gammu_cfg
):
    ctx = notify_ctx(db, clock, tmp_path, gateway="gammu")
    for i in range(N):
        new_dossier(ctx, f"K-{i:03d}", phone=f"09130000{i:02d}")
    config = write_toml(
        tmp_path / "hub.toml",
        {
            "hub": {"data_dir": str(tmp_path / "hub")},
            "database": {"url": db_url, "migrate_on_start": False},
            "http": {"secret_key": "test-secret-key-0123456789"},
            "sms": {
                "gateway": "gammu",
                "brand": "UBND MA",
                "daily_cap": 100,
                "window_start": "00:00",
                "window_end": "23:59",
            },
            "sms.gammu": {"spool_dir": str(gammu_cfg.spool_dir)},
        },
    )
    outbox = gammu_cfg.spool_dir / "outbox"
    child = subprocess.Popen(
        [sys.executable, str(HERE / "dispatcher.py"), str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_until(lambda: len(list(outbox.iterdir())) >= 10, timeout=60)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    handed_before = len(list(outbox.iterdir()))
    assert handed_before < N, "the kill came too late to interrupt anything"
    again = subprocess.run(
        [sys.executable, str(HERE / "dispatcher.py"), str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "DONE" in again.stdout, again.stdout + again.stderr
    ids = Counter(int(name.rsplit("_m", 1)[1].split(".")[0]) for name in (p.name for p in outbox.iterdir()))
    rows = messages(ctx)
    assert sorted(ids) == sorted(m.id for m in rows)
    assert set(ids.values()) == {1}
    assert {m.status for m in rows} == {"handed"}
