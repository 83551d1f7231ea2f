"""The systemd units are valid (systemd-analyze verify) and keep their promises."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from thanthien.paths import PROJECT_ROOT

UNITS = sorted((PROJECT_ROOT / "systemd").glob("*.service"))


def _unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # keep key case
    parser.read(path)
    return parser


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_is_a_hardened_notify_service_with_watchdog(unit: Path):
    service = _unit(unit)["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert service["Restart"] == "always"
    assert service["User"] != "root"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert service["ReadWritePaths"].startswith("/var/lib/thanthien-")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify_accepts_unit(unit: Path, tmp_path: Path):
    # verify insists that ExecStart exists: point it at this venv's interpreter.
    text = unit.read_text().replace("/opt/thanthien/.venv/bin/thanthien", sys.executable)
    text = text.replace("/opt/thanthien/current/venv/bin/thanthien", sys.executable)
    text = text.replace("/opt/thanthien/guard", sys.executable)
    copy = tmp_path / unit.name
    copy.write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                          text=True, timeout=60)
    problems = [line for line in proc.stderr.splitlines() if unit.name in line]
    assert proc.returncode == 0 and not problems, proc.stderr
