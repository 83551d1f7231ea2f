"""`thanthien sim fleet` as an operator runs it: broker users written in bulk, control commands
on stdin answered in JSON, and Ctrl-C stops the workers too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sim_helpers import descendants, gone

from support import EventCollector, wait_until

REPO = Path(__file__).resolve().parents[2]


class Lines(EventCollector[str]):
    """Stdout of a child, read on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        super().__init__()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.add(line)

    def wait_json(self, predicate, timeout: float = 30.0) -> dict:  # type: ignore[no-untyped-def]
        def matches(line: str) -> bool:
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                return False
            return bool(predicate(data))

        found = self.first(matches, timeout)
        assert found is not None, "".join(self.snapshot())
        return json.loads(found)


@pytest.mark.slow
def test_fleet_command_takes_stdin_commands_and_ctrl_c_stops_its_workers(broker, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "thanthien.cli", "sim", "fleet", "--broker-port", str(broker.port),
         "--broker-data", str(broker.data_dir), "--nodes", "3", "--mix", "rating=1", "--prefix",
         f"cli{os.getpid() % 10000}", "--press-rate", "0", "--until-stopped", "--stdin-control",
         "--data", str(tmp_path / "fleet"), "--ledger", str(tmp_path / "ledger.jsonl"),
         "--log-level", "WARNING"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = Lines(proc)
    try:
        lines.wait_json(lambda d: d.get("event") == "all-connected")
        assert proc.stdin is not None
        proc.stdin.write("cut nobody\nstatus\n")
        proc.stdin.flush()
        assert "no node" in lines.wait_json(lambda d: d.get("ok") is False)["error"]
        status = lines.wait_json(lambda d: d.get("ok") is True)["result"]
        assert (status["nodes"], status["connected"]) == (3, 3)
        workers = descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert wait_until(lambda: all(gone(p) for p in workers), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
