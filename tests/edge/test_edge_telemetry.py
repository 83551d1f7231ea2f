"""Telemetry: vitals from /proc and /sys, clock sync from chrony or timesyncd, and the
periodic message with outbox depth and ignored presses."""

from __future__ import annotations

import pytest
from edge_helpers import BOX_1_PINS, FakeClock, Outcomes, T, bouncy_press, edge_settings

from support import HUB, Collector, connected_link
from thanthien.edge.agent import AGENT_VERSION, EdgeAgent
from thanthien.edge.devices.rating_box import RatingBoxes
from thanthien.edge.telemetry import (
    ClockState,
    SystemProbe,
    clock_state,
    parse_chronyc_tracking,
    parse_meminfo,
    parse_timesync_offset,
)
from thanthien.protocol.payloads import Telemetry, decode

CHRONY_SYNCED = ("A29FC87B,time.cloudflare.com,3,1764031234.567890123,0.000123456,-0.000004321,"
                 "0.000210000,-12.345,0.002,0.045,0.012345678,0.000987654,1031.2,Normal\n")
CHRONY_UNSYNCED = "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.0,1.0,0.0,Not synchronised\n"  # noqa: E501
TIMESYNC_STATUS = """       Server: 192.168.1.1 (ntp.vnpt.vn)
Poll interval: 34min 8s (min: 32s; max 34min 8s)
         Leap: normal
      Version: 4
      Stratum: 2
    Reference: C0A80101
    Precision: 1us (-23)
Root distance: 28.472ms (max: 5s)
       Offset: -1.041ms
        Delay: 12.611ms
       Jitter: 2.143ms
 Packet count: 42
"""
MEMINFO = "MemTotal:        8000000 kB\nMemFree:          500000 kB\nMemAvailable:    6000000 kB\n"


def test_chronyc_tracking_gives_sync_state_and_offset():
    assert parse_chronyc_tracking(CHRONY_SYNCED) == ClockState(True, 0.123)
    assert parse_chronyc_tracking(CHRONY_UNSYNCED).synced is False
    assert parse_chronyc_tracking("506 Cannot talk to daemon") == ClockState(None, None)


def test_timesync_status_offset_is_read_in_milliseconds():
    assert parse_timesync_offset(TIMESYNC_STATUS) == -1.041
    assert parse_timesync_offset("Offset: +523us") == 0.523
    assert parse_timesync_offset("no offset here") is None


def test_clock_falls_back_from_chrony_to_timesyncd_and_to_none():
    outputs = {"timedatectl show -p NTPSynchronized --value": "yes\n",
               "timedatectl timesync-status": TIMESYNC_STATUS}
    assert clock_state(lambda args: outputs.get(" ".join(args))) == ClockState(True, -1.041)
    assert clock_state(lambda args: None) == ClockState(None, None)


def test_memory_used_is_total_minus_available():
    assert parse_meminfo(MEMINFO) == 25.0


def _fake_system(tmp_path, zones: dict[str, int]):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "uptime").write_text("12345.67 40000.00\n")
    (proc / "loadavg").write_text("0.52 0.41 0.30 2/345 6789\n")
    (proc / "meminfo").write_text(MEMINFO)
    thermal = tmp_path / "thermal"
    for i, (kind, milli) in enumerate(zones.items()):
        zone = thermal / f"thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(f"{milli}\n")
    return SystemProbe(tmp_path, proc=proc, thermal=thermal, run=lambda args: None)


def test_vitals_come_from_proc_sys_and_the_disk(tmp_path):
    vitals = _fake_system(tmp_path, {"gpu-thermal": 40000, "cpu-thermal": 51234}).collect()
    assert vitals.cpu_temp_c == pytest.approx(51.234)
    assert (vitals.load_1m, vitals.load_5m, vitals.load_15m) == (0.52, 0.41, 0.30)
    assert vitals.uptime_s == 12345.7
    assert vitals.mem_used_pct == 25.0
    assert 0 <= vitals.disk_used_pct <= 100 and vitals.disk_free_mb > 0
    assert vitals.clock == ClockState(None, None)


def test_board_without_thermal_sensor_reports_no_temperature(tmp_path):
    assert _fake_system(tmp_path, {}).collect().cpu_temp_c is None


def test_telemetry_reports_outbox_depth_and_ignored_presses(tmp_path, broker):
    received = Collector()
    hub = connected_link(broker.port, HUB, "test-telemetry-hub", {T.telemetry("node-a"): received})
    clock = FakeClock()
    agent = EdgeAgent(edge_settings(tmp_path / "node", broker.port), clock=clock)
    try:
        agent.start()
        assert received.wait_count(1)  # one right after connecting
        first = decode(Telemetry, received.messages[0].payload)
        assert (first.node, first.session, first.agent_version) == ("node-a", 1, AGENT_VERSION)
        outcomes = Outcomes()
        agent.device(RatingBoxes).add_listener(outcomes)
        pin = agent.pin_factory.pin(BOX_1_PINS[4])
        bouncy_press(pin, lambda: outcomes.wait_count(1))
        bouncy_press(pin, lambda: outcomes.wait_count(2))  # same instant: ignored
        sent = agent.publish_telemetry()
        assert sent is not None
        assert received.wait_count(2)
        latest = decode(Telemetry, received.messages[-1].payload)
        assert latest == sent
        assert (latest.outbox_depth, latest.ignored_presses) == (1, 1)
    finally:
        agent.stop()
        hub.stop()
