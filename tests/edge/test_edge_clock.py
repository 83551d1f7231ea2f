"""The clock-trust rule (edge/clock.py): NTP, the hub's time within a tolerance, the unknown
case, the hub-time estimate against the monotonic clock, and corrected event times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from clock_support import HOURS

from thanthien.edge.clock import ClockTrust, ntp_probe, retime
from thanthien.protocol.payloads import PlaybackEvent, RatingEvent

CHRONY_SYNCED = ("A29FC87B,162.159.200.123,3,1700000000.0,0.000012,0.0,0.0,-12.3,0.001,0.01,0.005,0.012,"
                 "64.2,Normal\n")


class Clocks:
    """A hand-moved monotonic clock and a wall clock ``offset`` away from the true time."""

    def __init__(self, true_start: float = 1_800_000_000.0, offset: float = 0.0) -> None:
        self.mono_now = 500.0
        self.true_at_mono0 = true_start - self.mono_now
        self.offset = offset

    def mono(self) -> float:
        return self.mono_now

    def true(self) -> float:
        return self.true_at_mono0 + self.mono_now

    def wall(self) -> float:
        return self.true() + self.offset

    def advance(self, seconds: float) -> None:
        self.mono_now += seconds


def trust(clocks: Clocks, ntp: bool | None = False, **kwargs) -> ClockTrust:
    box = {"ntp": ntp}
    t = ClockTrust(wall=clocks.wall, mono=clocks.mono, boot_id="boot-1", ntp=lambda: box["ntp"], **kwargs)
    t.refresh()
    t.box = box  # type: ignore[attr-defined]
    return t


def test_ntp_synchronised_clock_is_trusted_even_far_from_the_hub():
    clocks = Clocks(offset=2 * HOURS)
    t = trust(clocks, ntp=True)
    t.note_hub_time(clocks.true())
    assert t.trusted() and t.view().reason == "ntp"


def test_unsynchronised_clock_is_not_trusted_until_the_hub_is_heard():
    t = trust(Clocks(), ntp=False)
    assert not t.trusted() and t.view().reason == "unsynced"


def test_clock_within_the_tolerance_of_the_hub_is_trusted_without_ntp():
    clocks = Clocks(offset=-1.5)
    t = trust(clocks, ntp=False, tolerance_s=5.0)
    t.note_hub_time(clocks.true())
    view = t.view()
    assert view.trusted and view.reason == "hub"
    assert view.hub_offset_s == pytest.approx(1.5)  # hub minus node: the node is behind


def test_clock_hours_ahead_of_the_hub_is_not_trusted():
    clocks = Clocks(offset=3 * HOURS)
    t = trust(clocks, ntp=False)
    t.note_hub_time(clocks.true())
    view = t.view()
    assert not view.trusted and view.reason == "hub-offset"
    assert view.hub_offset_s == pytest.approx(-3 * HOURS)


@pytest.mark.parametrize(("when_unknown", "trusted"), [("trust", True), ("hold", False)])
def test_a_system_that_cannot_tell_follows_when_unknown(when_unknown, trusted):
    assert trust(Clocks(), ntp=None, when_unknown=when_unknown).trusted() is trusted


def test_the_hub_time_overrides_an_unknown_sync_state():
    clocks = Clocks(offset=5 * HOURS)
    t = trust(clocks, ntp=None, when_unknown="trust")
    t.note_hub_time(clocks.true())
    assert not t.trusted()


def test_a_slow_beacon_does_not_move_the_hub_time_estimate():
    clocks = Clocks()
    t = trust(clocks, ntp=False)
    t.note_hub_time(clocks.true() - 0.004)  # 4 ms in transit
    clocks.advance(15)
    t.note_hub_time(clocks.true() - 2.5)  # a message that sat 2.5 s in a queue
    assert t.hub_offset_s() == pytest.approx(-0.004, abs=1e-6)


def test_a_step_of_the_wall_clock_shows_in_the_offset_at_once():
    clocks = Clocks()
    t = trust(clocks, ntp=False)
    t.note_hub_time(clocks.true())
    assert t.trusted()
    clocks.offset = -1 * HOURS  # fake-hwclock restores an old time
    assert t.hub_offset_s() == pytest.approx(HOURS) and not t.trusted()


def test_listeners_hear_each_change_of_trust_once():
    clocks = Clocks(offset=2 * HOURS)
    t = trust(clocks, ntp=False)
    heard: list[bool] = []
    t.add_listener(heard.append)
    t.note_hub_time(clocks.true())
    t.note_hub_time(clocks.true())
    t.box["ntp"] = True  # type: ignore[attr-defined]
    t.refresh()
    t.refresh()
    assert heard == [True]  # not trusted before the first beacon, still not after it: no change


def test_true_time_of_a_past_instant_comes_from_the_hub_estimate():
    clocks = Clocks(offset=-20 * HOURS)
    t = trust(clocks, ntp=False)
    pressed_mono, pressed_true = clocks.mono(), clocks.true()
    clocks.advance(600)
    t.note_hub_time(clocks.true())
    assert t.true_time(pressed_mono, "boot-1") == pytest.approx(pressed_true)


def test_true_time_of_a_past_instant_comes_from_the_wall_clock_once_ntp_has_it():
    clocks = Clocks(offset=-20 * HOURS)
    t = trust(clocks, ntp=False)
    pressed_mono, pressed_true = clocks.mono(), clocks.true()
    clocks.advance(600)
    clocks.offset = 0.0  # NTP stepped the clock
    t.box["ntp"] = True  # type: ignore[attr-defined]
    t.refresh()
    assert t.true_time(pressed_mono, "boot-1") == pytest.approx(pressed_true)


def test_true_time_of_an_instant_of_another_boot_is_unknown():
    clocks = Clocks()
    t = trust(clocks, ntp=True)
    assert t.true_time(clocks.mono(), "boot-0") is None


def test_a_hub_time_is_moved_to_an_untrusted_clock_by_the_offset():
    clocks = Clocks(offset=-3 * HOURS)
    t = trust(clocks, ntp=False)
    assert t.to_local(clocks.true()) is None
    t.note_hub_time(clocks.true())
    assert t.to_local(clocks.true() + 5) == pytest.approx(clocks.wall() + 5)


def test_timesyncd_flag_file_means_synchronised(tmp_path: Path):
    flag = tmp_path / "timesync" / "synchronized"
    flag.parent.mkdir()
    flag.write_text("")
    assert ntp_probe(flag, run=lambda _args: None)() is True


def test_timesyncd_running_without_its_flag_means_not_synchronised(tmp_path: Path):
    (tmp_path / "timesync").mkdir()
    assert ntp_probe(tmp_path / "timesync" / "synchronized", run=lambda _args: None)() is False


def test_chrony_answers_where_timesyncd_is_absent(tmp_path: Path):
    def run(args: list[str]) -> str | None:
        return CHRONY_SYNCED if args[0] == "chronyc" else None

    assert ntp_probe(tmp_path / "none" / "synchronized", run=run)() is True


def test_a_system_without_timesyncd_or_chrony_cannot_tell(tmp_path: Path):
    assert ntp_probe(tmp_path / "none" / "synchronized", run=lambda _args: None)() is None


def test_retime_moves_only_the_node_clock_fields():
    at = datetime(2027, 2, 16, 11, 0, tzinfo=UTC)
    rating = RatingEvent(event_id=uuid4(), node="node-a", seq=1, box="box-1", counter="quay-1", score=4,
                         pressed_at=at)
    moved = retime(rating, "rating", 20 * HOURS, uncertain=False)
    assert moved.pressed_at == at + timedelta(hours=20) and moved.clock_uncertain is False
    playback = PlaybackEvent(event_id=uuid4(), node="node-a", occurrence_id="o1", status="started", at=at,
                             scheduled_at=at, media_sha256="0" * 64)
    marked = retime(playback, "playback", 0.0, uncertain=True)
    assert marked.at == at and marked.scheduled_at == at and marked.clock_uncertain is True
