"""The plan player: plays each occurrence of the node's plan at its start time on the
node's own clock, whether or not the hub or the broker is reachable then.

One scheduler thread decides; one short-lived thread per playback blocks in
``AudioOutput.play``. The scheduler sleeps on ``threading.Event.wait`` until the next thing
to do (at most a second, so a stepped system clock is noticed) and is woken by a new plan,
a command, a finished playback or a finished download.

Timing of one occurrence starting at ``T``:

* ``T - warmup - prepare``: the clip is loaded from the cache and verified;
* ``T - warmup``: the amplifier relay is switched on (unless already on);
* ``T - approach``: the last stretch is waited in steps of at most 2 ms, so the audio
  starts within about a millisecond of ``T`` (the sound card adds its own latency);
* after the last playback the relay stays on for ``relay_off_delay_s`` (the next item may
  follow) and is then switched off.

Priorities (Thông tư 39/2020/TT-BTTTT): normal < priority < emergency. A higher one
interrupts a lower one at its start time (a play-now command starts at once, after the
amplifier's warm-up if it was off); an equal or lower one waits its turn and starts late,
unless it would start more than ``max_delay_s`` late: then it is reported ``missed``.

**An untrusted clock holds the plan.** With a ``trust`` (``edge/clock.py``), every decision
first asks whether the node's wall clock may be trusted. While it may not, plan items are
held: not started, not warmed up for, not reported missed or failed (a node whose clock runs
hours ahead would otherwise play the next one hours early and call the ones between missed).
Play-now commands, emergencies and test tones still play. ``held`` counts the plan items due
by the node's clock or by the hub's time, whichever is later (``on_held`` hears every change).
Once the clock is trusted again the plan resumes: items still within ``max_delay_s`` of their
time play (late), items whose time truly passed are reported missed.

Every occurrence ends in exactly one of: ``finished``, ``interrupted``, ``failed`` (media not
in the cache by its start time, corrupt file, audio error) or ``missed``; ``started`` comes
before ``finished``/``interrupted``. Occurrences that have started are remembered in
``state_path`` so that a restart does not play them again.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from thanthien.edge.audio import AudioClip, AudioOutput, PlayResult
from thanthien.edge.clock import ClockTrust
from thanthien.edge.speaker.live import LIVE_URL, LiveFeed
from thanthien.edge.speaker.media_cache import MediaCache, MediaCorrupt
from thanthien.edge.speaker.prefetch import Prefetcher, Want
from thanthien.edge.speaker.relay import AmplifierRelay
from thanthien.edge.speaker.stream import RelayOutcome, StreamRelay
from thanthien.protocol.payloads import MAX_LEVELS, Plan, PlanItem, PlaybackEvent, PlayLevels, SourceSpan

log = logging.getLogger(__name__)

RANK = {"normal": 0, "priority": 1, "emergency": 2}
PRIORITY_LABEL = {"normal": "thông thường", "priority": "ưu tiên", "emergency": "khẩn cấp"}
MAX_WAIT_S = 1.0
FINE_STEP_S = 0.002
DONE_KEEP_S = 3 * 24 * 3600

EventSink = Callable[[PlaybackEvent], None]


@dataclass(frozen=True)
class PlayerSettings:
    warmup_s: float = 1.0
    """The relay switches the amplifier on this long before the audio."""
    relay_off_delay_s: float = 2.0
    """The amplifier stays on this long after the last playback."""
    prepare_s: float = 0.5
    """The clip is loaded this long before the relay switches on."""
    approach_s: float = 0.05
    """The last stretch before a start is waited in short steps."""
    interrupt_lead_s: float = 0.03
    """A lower item is stopped this long before a higher one starts."""
    max_delay_s: float = 300.0
    """An item that cannot start within this time after its start time is missed."""
    play_now_wait_s: float = 30.0
    """How long a play-now command waits for its media to download."""
    volume: int = 100
    """Node master volume in percent, applied on top of each item's volume."""


@dataclass(eq=False)
class _Job:
    item: PlanItem
    start: float  # epoch seconds
    seq: int
    command: bool
    deadline: float  # media must be cached by then
    clip: AudioClip | None = None
    prepared: bool = False
    """Ready to play: its clip is loaded, or it needs none (a relay falling back to silence, a
    relay whose fallback file did not arrive by its start, a live announcement)."""
    feed: LiveFeed | None = None
    """A live announcement's audio, as it arrives."""

    def __post_init__(self) -> None:
        if self.clip is not None or self.feed is not None or (
                self.item.stream is not None and self.item.stream.fallback == "silence"):
            self.prepared = True

    @property
    def rank(self) -> int:
        return RANK[self.item.priority]

    @property
    def occ(self) -> str:
        return self.item.occurrence_id


@dataclass(eq=False)
class _Playing:
    job: _Job
    stop: threading.Event
    started_at: float
    thread: threading.Thread | None = None
    done: bool = False
    result: PlayResult | None = None
    error: str | None = None
    reason: str = ""
    detail: str = ""
    """What the playback itself says (a relay's fallback)."""
    sources: list[SourceSpan] | None = None


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _merge(levels: tuple[float, ...] | list[float], step: int) -> list[float]:
    """Levels per ``step`` seconds: the power mean of each group, 0.1 dB."""
    out = []
    for i in range(0, len(levels), step):
        group = levels[i:i + step]
        power = sum(10 ** (v / 10) for v in group) / len(group)
        out.append(max(-120.0, min(0.0, round(10 * math.log10(power), 1))) if power > 0 else -120.0)
    return out


def play_levels(result: PlayResult) -> PlayLevels | None:
    """Proof of play from what the output metered (``None`` if it metered nothing)."""
    if not result.sent_dbfs:
        return None
    step = max(1, math.ceil(len(result.sent_dbfs) / MAX_LEVELS))
    heard = None if result.heard_dbfs is None else _merge(result.heard_dbfs, step)
    return PlayLevels(step_s=step, sent_dbfs=_merge(result.sent_dbfs, step), heard_dbfs=heard)


class _DoneLog:
    """Occurrence ids that started (or were reported otherwise), kept for a few days."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, float] = {}
        if path is not None and path.exists():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self.entries = {str(k): float(v) for k, v in raw.items()}
            except (ValueError, AttributeError, TypeError):
                log.warning("ignoring unreadable playback state %s", path)

    def __contains__(self, occ: str) -> bool:
        return occ in self.entries

    def add(self, occ: str, start: float, now: float) -> None:
        self.entries[occ] = start
        self.entries = {k: v for k, v in self.entries.items() if v > now - DONE_KEEP_S}
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.entries), encoding="utf-8")
            os.replace(tmp, self.path)


class PlanPlayer:
    def __init__(self, node_id: str, output: AudioOutput, cache: MediaCache, *,
                 on_event: EventSink, relay: AmplifierRelay | None = None,
                 settings: PlayerSettings | None = None, prefetcher: Prefetcher | None = None,
                 clock: Callable[[], float] = time.time, state_path: Path | None = None,
                 trust: ClockTrust | None = None, on_held: Callable[[int], None] | None = None,
                 streams: StreamRelay | None = None) -> None:
        self.node_id = node_id
        self.streams = streams or StreamRelay()
        """Plays relay items (``PlanItem.stream``)."""
        self.output = output
        self.cache = cache
        self.relay = relay or AmplifierRelay(None)
        self.settings = settings or PlayerSettings()
        self.prefetcher = prefetcher
        self._on_event = on_event
        self.clock = clock
        """The wall clock the plan plays on, read every loop (the simulator gives each node its own)."""
        self.trust = trust
        """Whether ``clock`` may be trusted; ``None``: always."""
        self._on_held = on_held
        self._holding = False
        self._held = 0
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = itertools.count(1)
        self._plan: Plan | None = None
        self._plan_jobs: dict[str, _Job] = {}
        self._commands: dict[str, _Job] = {}
        self._playing: _Playing | None = None
        self._relay_on_since: float | None = None
        self._last_end = 0.0
        self._done = _DoneLog(state_path)
        self._events: list[PlaybackEvent] = []
        self._amplifier_held = False

    # -- public ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="speaker-player", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the scheduler and any playback (reported interrupted); relay off."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            playing = self._playing
            if playing is not None:
                playing.reason = "dừng dịch vụ loa"
                playing.stop.set()
        if playing is not None and playing.thread is not None:
            playing.thread.join(timeout=10)
        with self._lock:
            self._reap(self.clock())
        self._flush()
        self.relay.off()
        self._relay_on_since = None

    def wake(self) -> None:
        """Reconsider now (e.g. a download landed)."""
        self._wake.set()

    @property
    def plan(self) -> Plan | None:
        return self._plan

    def set_plan(self, plan: Plan) -> bool:
        """Adopt ``plan`` unless it is for another node, a repeat or older than the current
        one. Items already played stay played; the item playing now is not cut short."""
        if plan.node != self.node_id:
            log.error("ignoring a plan for node %s (this is %s)", plan.node, self.node_id)
            return False
        with self._lock:
            cur = self._plan
            if cur is not None and (plan.generated_at < cur.generated_at or (
                    plan.revision == cur.revision and plan.generated_at == cur.generated_at)):
                log.info("ignoring plan revision %d (have %d)", plan.revision, cur.revision)
                return False
            playing_occ = self._playing.job.occ if self._playing else None
            jobs: dict[str, _Job] = {}
            for item in plan.items:
                occ = item.occurrence_id
                if occ in self._done or occ == playing_occ:
                    continue
                old = self._plan_jobs.get(occ)
                if old is not None and old.item == item:
                    jobs[occ] = old
                    continue
                start = item.start_at.timestamp()
                jobs[occ] = _Job(item, start, next(self._seq), False, deadline=start)
            self._plan = plan
            self._plan_jobs = jobs
            keep = {j.item.media_sha256 for j in (*jobs.values(), *self._commands.values())}
            if self._playing is not None:
                keep.add(self._playing.job.item.media_sha256)
            wants = [Want(j.item.media_sha256, j.item.media_url, j.start) for j in jobs.values()]
        log.info("plan revision %d: %d item(s) to play", plan.revision, len(jobs))
        if self.prefetcher is not None:
            self.prefetcher.want(wants)
        self.cache.evict(keep | (self.prefetcher.wanted() if self.prefetcher else set()))
        self._wake.set()
        return True

    def play_now(self, item: PlanItem, clip: AudioClip | None = None, *, start: float | None = None) -> bool:
        """Play ``item`` as soon as its priority allows (at ``start``, on this node's clock, or
        at ``item.start_at`` if that is still ahead, so that several nodes can start together).
        ``clip`` skips the cache (a test tone). Plays whether or not the clock is trusted.
        False if this occurrence is already known."""
        with self._lock:
            occ = item.occurrence_id
            playing = self._playing is not None and self._playing.job.occ == occ
            if occ in self._done or occ in self._commands or playing:
                return False
            now = self.clock()
            start = max(now, item.start_at.timestamp() if start is None else start)
            # without a prefetcher nobody will fetch the media: it is there now or never
            wait = self.settings.play_now_wait_s if self.prefetcher is not None else 0.0
            self._commands[occ] = _Job(item, start, next(self._seq), True, deadline=start + wait,
                                       clip=clip)
        if clip is None and not self.cache.has(item.media_sha256) and self.prefetcher is not None:
            self.prefetcher.urgent(item.media_sha256, item.media_url)
        log.info("play-now %s (%s) queued", occ, item.priority)
        self._wake.set()
        return True

    def play_live(self, item: PlanItem, feed: LiveFeed) -> bool:
        """Play a live announcement as it arrives, as a play-now of its priority (now, after the
        amplifier's warm-up if it was off). False if this occurrence is already known."""
        with self._lock:
            occ = item.occurrence_id
            playing = self._playing is not None and self._playing.job.occ == occ
            if occ in self._done or occ in self._commands or playing:
                return False
            now = self.clock()
            self._commands[occ] = _Job(item, now, next(self._seq), True, deadline=now, feed=feed)
        log.info("live %s (%s) queued", occ, item.priority)
        self._wake.set()
        return True

    def retune(self, **changes: float | int) -> None:
        """Change settings as the player runs (the hub's volume or warm-up): the next decision
        and the next clip use them; what plays now keeps its volume."""
        with self._lock:
            self.settings = replace(self.settings, **changes)  # type: ignore[arg-type]
        self._wake.set()

    def hold_amplifier(self, on: bool) -> bool:
        """IT's switch: ``on`` powers the amplifier until switched off again (a check on site);
        ``off`` powers it down now unless something plays. Returns whether it is on."""
        with self._lock:
            self._amplifier_held = on
            if on:
                if not self.relay.is_on:
                    self.relay.on()
                    self._relay_on_since = self.clock()
            elif self._playing is None and self.relay.is_on:
                self.relay.off()
                self._relay_on_since = None
            on_now = self.relay.is_on
        self._wake.set()
        return on_now

    def stop(self, reason: str = "dừng theo lệnh") -> list[str]:
        """End what is playing and drop queued play-now items; returns their occurrence ids."""
        with self._lock:
            stopped = []
            if self._playing is not None and not self._playing.stop.is_set():
                self._playing.reason = reason
                self._playing.stop.set()
                stopped.append(self._playing.job.occ)
            now = self.clock()
            for job in list(self._commands.values()):
                self._finish_job(job, "interrupted", now, f"hủy trước khi phát ({reason})")
                stopped.append(job.occ)
        self._wake.set()
        return stopped

    def busy(self, within_s: float) -> tuple[str, float] | None:
        """Why the agent must not restart now, and until when (epoch seconds): a broadcast playing,
        or one due within ``within_s`` (an update waits: ``edge/update``). ``None``: free."""
        now = self.clock()
        with self._lock:
            playing = self._playing
            if playing is not None and not playing.done:
                item = playing.job.item
                return f"đang phát «{item.title}»", playing.started_at + item.duration_s
            due = [j for j in self._pending() if j.start - self._lead() <= now + within_s
                   and j.start + j.item.duration_s > now]
        if not due:
            return None
        job = min(due, key=lambda j: j.start)
        why = f"sắp phát «{job.item.title}» lúc {_utc(job.start):%H:%M:%S} UTC"
        return why, job.start + job.item.duration_s

    def status(self) -> dict[str, str | int | bool | None]:
        with self._lock:
            return {
                "playing": self._playing.job.occ if self._playing else None,
                "pending": len(self._plan_jobs) + len(self._commands),
                "plan_revision": self._plan.revision if self._plan else None,
                "amplifier_on": self.relay.is_on,
                "volume": self.settings.volume,
                "clock_trusted": not self._holding,
                "held": self._held,
            }

    @property
    def held(self) -> int:
        """Plan items due that wait for a trusted clock (0 while it is trusted)."""
        return self._held

    # -- the scheduler thread -------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing.is_set():
            self._wake.clear()
            try:
                wait = self._tick()
            except Exception:
                log.exception("plan player step failed")
                wait = MAX_WAIT_S
            self._flush()
            if wait > 0:
                self._wake.wait(min(wait, MAX_WAIT_S))

    def _lead(self) -> float:
        return self.settings.warmup_s + self.settings.prepare_s

    def _pending(self) -> list[_Job]:
        """What may be played: plan items only while the clock is trusted."""
        if self._holding:
            return list(self._commands.values())
        return [*self._plan_jobs.values(), *self._commands.values()]

    def _judge_clock(self, now: float) -> None:
        holding = self.trust is not None and not self.trust.trusted()
        held = 0
        if holding:
            assert self.trust is not None
            offset = self.trust.hub_offset_s()
            horizon = now if offset is None else max(now, now + offset)
            held = sum(1 for j in self._plan_jobs.values() if j.start - self._lead() <= horizon)
        if holding != self._holding:
            if holding:
                log.warning("clock not trusted: holding the plan's broadcasts (play-now still plays)")
            else:
                log.info("clock trusted again: the plan plays")
        self._holding = holding
        if held != self._held:
            self._held = held
            if held:
                log.warning("clock unsynced, holding %d broadcast(s)", held)
            if self._on_held is not None:
                self._on_held(held)

    def _tick(self) -> float:
        """One decision; returns how long to wait before the next one."""
        now = self.clock()
        with self._lock:
            self._judge_clock(now)
            self._reap(now)
            self._expire(now)
            if self._playing is not None:
                job = self._choose_preemptor(now, self._playing)
                if job is None:
                    return self._until_due(now, above=self._playing.job.rank)
            else:
                job = self._choose_idle(now)
                if job is None:
                    return min(self._idle_relay(now), self._until_due(now))
            if not job.prepared and not self.cache.has(job.item.media_sha256):
                if job.item.stream is not None and now >= job.deadline:
                    job.prepared = True  # the station plays; its fallback becomes silence
                    return 0
                if now >= job.deadline:
                    detail = "chưa tải được tệp âm thanh trước giờ phát"
                    error = self.prefetcher.last_error(job.item.media_sha256) if self.prefetcher else None
                    self._finish_job(job, "failed", now, f"{detail} ({error})" if error else detail)
                    return 0
                return min(job.deadline - now, self._until_due(now), MAX_WAIT_S)
        if not job.prepared:
            try:
                job.clip = self.cache.load(job.item.media_sha256)
                job.prepared = True
            except (MediaCorrupt, FileNotFoundError) as exc:
                with self._lock:
                    self._finish_job(job, "failed", self.clock(), f"tệp âm thanh hỏng: {exc}")
                if self.prefetcher is not None and not job.command:
                    self.prefetcher.urgent(job.item.media_sha256, job.item.media_url)
                return 0
            return 0  # loading took time: decide again
        with self._lock:
            playing = self._playing
            if playing is not None:
                at = job.start - self.settings.interrupt_lead_s
                if now < at:
                    return at - now
                playing.reason = (f"bị ngắt bởi bản tin {PRIORITY_LABEL[job.item.priority]}: "
                                  f"{job.item.title}")[:500]
                playing.stop.set()
                log.info("interrupting %s for %s (%s)", playing.job.occ, job.occ, job.item.priority)
                return MAX_WAIT_S  # the playback thread wakes us when it has stopped
            play_at = job.start
            if not self.relay.is_on:
                # a little early, so that the wake-up's own jitter does not delay the audio
                on_at = job.start - self.settings.warmup_s - self.settings.approach_s
                if now < on_at:
                    return on_at - now
                self.relay.on()
                self._relay_on_since = now
            assert self._relay_on_since is not None
            play_at = max(play_at, self._relay_on_since + self.settings.warmup_s)
            if now < play_at - self.settings.approach_s:
                return play_at - self.settings.approach_s - now
        if not self._approach(play_at):
            return 0
        with self._lock:
            if job.occ in self._plan_jobs or job.occ in self._commands:
                self._begin(job)
        return 0

    def _approach(self, at: float) -> bool:
        """Wait until ``at`` precisely; False if the player is closing."""
        while True:
            remaining = at - self.clock()
            if remaining <= 0:
                return True
            step = remaining - 0.005 if remaining > 0.01 else min(remaining, FINE_STEP_S)
            if self._closing.wait(step):
                return False

    def _due(self, now: float, above: int = -1) -> list[_Job]:
        """Jobs within their lead time, of a rank above ``above``. A job still waiting for
        its download gives way to jobs that can play (it is chosen alone to be waited for,
        or once its deadline has passed to be reported failed)."""
        lead = self._lead()
        due = [j for j in self._pending() if j.rank > above and j.start - lead <= now]
        ready = [j for j in due if j.prepared or now >= j.deadline
                 or self.cache.has(j.item.media_sha256)]
        return ready or due

    def _choose_idle(self, now: float) -> _Job | None:
        """The job to start next: the earliest effective start, then the highest priority."""
        return min(self._due(now), key=lambda j: (max(j.start, now), -j.rank, j.start, j.seq),
                   default=None)

    def _choose_preemptor(self, now: float, playing: _Playing) -> _Job | None:
        return min(self._due(now, above=playing.job.rank), key=lambda j: (j.start, -j.rank, j.seq),
                   default=None)

    def _until_due(self, now: float, above: int = -1) -> float:
        """Time until the next job of a rank above ``above`` comes within its lead time."""
        lead = self._lead()
        starts = [j.start - lead for j in self._pending() if j.rank > above and j.start - lead > now]
        return min(starts, default=now + MAX_WAIT_S) - now

    def _idle_relay(self, now: float) -> float:
        if not self.relay.is_on or self._amplifier_held:
            return MAX_WAIT_S
        off_at = self._last_end + self.settings.relay_off_delay_s
        if now >= off_at:
            self.relay.off()
            self._relay_on_since = None
            return MAX_WAIT_S
        return off_at - now

    def _expire(self, now: float) -> None:
        limit = self.settings.max_delay_s
        for job in self._pending():
            if now > job.start + limit:
                self._finish_job(job, "missed", now,
                                 f"không phát được trong {limit:g} giây sau giờ phát")

    def _begin(self, job: _Job) -> None:
        assert job.prepared
        self._plan_jobs.pop(job.occ, None)
        self._commands.pop(job.occ, None)
        playing = _Playing(job, threading.Event(), self.clock())
        playing.thread = threading.Thread(target=self._play, args=(playing,),
                                          name=f"speaker-play-{job.occ}", daemon=True)
        self._playing = playing
        playing.thread.start()
        late = playing.started_at - job.start
        detail = f"phát muộn {late:.1f} giây" if late >= 1.0 else ""
        self._done.add(job.occ, job.start, playing.started_at)
        self._report(job.item, "started", playing.started_at, detail)
        log.info("playing %s %r (%s, %.1f s) at %+.1f ms", job.occ, job.item.title,
                 job.item.priority, job.clip.duration_s if job.clip else job.item.duration_s, 1000 * late)

    def _play(self, playing: _Playing) -> None:
        job = playing.job
        volume = round(job.item.volume * self.settings.volume / 100)
        try:
            outcome: RelayOutcome | None = None
            if job.feed is not None:
                outcome = job.feed.play(self.output, stop=playing.stop, volume=volume)
            elif job.item.stream is not None:
                outcome = self.streams.play(job.item, self.output, stop=playing.stop, volume=volume,
                                            fallback=job.clip)
            if outcome is not None:
                playing.result, playing.sources = outcome.result, outcome.sources
                playing.detail = outcome.detail
            else:
                assert job.clip is not None
                playing.result = self.output.play(job.clip, volume=volume, stop=playing.stop)
        except Exception as exc:
            log.exception("audio output failed for %s", job.occ)
            playing.error = f"{type(exc).__name__}: {exc}"[:400]
        finally:
            playing.done = True
            self._wake.set()

    def _reap(self, now: float) -> None:
        playing = self._playing
        if playing is None or not playing.done:
            return
        self._playing = None
        self._last_end = now
        item = playing.job.item
        result = playing.result
        if playing.error is not None or result is None:
            self._report(item, "failed", now, f"lỗi phát âm thanh: {playing.error}")
        elif result.interrupted:
            self._report(item, "interrupted", result.finished_at.timestamp(),
                         playing.reason or playing.detail or "bị ngắt", levels=play_levels(result),
                         sources=playing.sources)
        else:
            self._report(item, "finished", result.finished_at.timestamp(), playing.detail,
                         levels=play_levels(result), sources=playing.sources)

    def _finish_job(self, job: _Job, status: str, now: float, detail: str) -> None:
        self._plan_jobs.pop(job.occ, None)
        self._commands.pop(job.occ, None)
        self._done.add(job.occ, job.start, now)
        self._report(job.item, status, now, detail)
        log.warning("%s %s: %s", job.occ, status, detail)

    def _report(self, item: PlanItem, status: str, at: float, detail: str, *,
                levels: PlayLevels | None = None, sources: list[SourceSpan] | None = None) -> None:
        self._events.append(PlaybackEvent(
            event_id=uuid.uuid4(), node=self.node_id, occurrence_id=item.occurrence_id,
            status=status, at=_utc(at), scheduled_at=item.start_at,  # type: ignore[arg-type]
            media_sha256=None if item.media_url == LIVE_URL else item.media_sha256, detail=detail[:500],
            levels=levels,
            sources=sources[:20] if sources else None,
        ))

    def _flush(self) -> None:
        with self._lock:
            events, self._events = self._events, []
        for event in events:
            try:
                self._on_event(event)
            except Exception:
                log.exception("playback event %s/%s not delivered", event.occurrence_id,
                              event.status)
