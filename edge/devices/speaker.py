"""The loudspeaker as an edge agent device.

It follows the node's retained plan topic (``{root}/node/{node}/plan``), keeps the last
plan it adopted in ``<data_dir>/speaker-plan.json`` so that a node restarted while the
broker is unreachable still plays it, reports every occurrence through the agent's outbox
(``event/playback``, re-sent until the hub acks it) and adds four commands:

``play-now``
    ``occurrence_id`` (text), ``broadcast_id`` (number), ``media_sha256`` (text) are
    required; ``media_url`` (default ``media/<sha>``, relative to ``speakers.hub_url``),
    ``priority`` (``normal``/``priority``/``emergency``, default ``normal``), ``volume``
    (0-100, default 100), ``title``, ``duration_s`` (informational) and ``start_at`` (ISO
    8601 with offset, the hub's time: start together with other nodes; default now) are
    optional. Plays whether or not the node's clock is trusted; on an untrusted clock
    ``start_at`` is moved by the offset to the hub's time, or ignored (now) while that is
    unknown. Answers ``queued`` and whether the media was already ``cached``.
``stop``
    Ends what is playing and drops queued play-now items; answers their occurrence ids.
``test-tone``
    ``seconds`` (0.5-30, default 3), ``volume`` (default 50), ``frequency_hz`` (default
    1000): a sine tone at normal priority, not reported to the hub.
``speaker-status``
    What is playing, how many occurrences wait, the plan revision, whether the amplifier
    is on, the volume, how many media files are cached, whether the clock is trusted and how
    many scheduled broadcasts are held for it.
``set-volume``
    ``volume`` (0-100, required): the node's master volume from now on (until the next
    config); answers the volume it now plays at.
``amplifier``
    ``on`` (true/false, required): power the amplifier for a check on site (held on until
    switched off) or off now (unless something plays); answers whether it is on.

It follows ``{root}/node/{node}/live`` too: the frames of a live announcement from an officer's
browser, played as they arrive (``edge/speaker/live.py``).

It also joins ``identify`` with a short beep, and takes a new volume, warm-up or delay from the
hub's config as it runs (``retune``), without being rebuilt.

The player plays on the node's wall clock (``context.wall_clock``) and holds the plan while
``context.clock_trust`` says that clock is not trusted (``edge/speaker/player.py``).
"""

from __future__ import annotations

import array
import hashlib
import logging
import math
import os
import uuid
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from thanthien.edge.audio import AudioClip
from thanthien.edge.commands import Args, CommandError, Result, number_arg, str_arg
from thanthien.edge.context import Capability, DeviceContext
from thanthien.edge.settings import EdgeSettings
from thanthien.edge.speaker.config import SpeakerSection
from thanthien.edge.speaker.live import LIVE_URL, NO_MEDIA, LiveFeed
from thanthien.edge.speaker.media_cache import MediaCache, is_sha256
from thanthien.edge.speaker.player import PlanPlayer, PlayerSettings
from thanthien.edge.speaker.prefetch import Prefetcher
from thanthien.edge.speaker.relay import AmplifierRelay
from thanthien.mqtt import Message
from thanthien.protocol.payloads import (
    LiveFrame,
    PayloadError,
    Plan,
    PlanItem,
    PlaybackEvent,
    decode,
    utc_now,
)

log = logging.getLogger(__name__)

PLAN_FILE = "speaker-plan.json"
PLAYED_FILE = "speaker-played.json"
TONE_RATE = 22050
TONE_PREFIX = "test-tone-"
BEEP_HZ = 880.0
LIVE_FIELDS = {"volume": "volume", "warmup_s": "warmup_s", "relay_off_delay_s": "relay_off_delay_s",
               "max_delay_s": "max_delay_s", "play_now_wait_s": "play_now_wait_s"}
"""Speaker settings the player takes as it runs (config field -> ``PlayerSettings`` field)."""


class SpeakerDevice:
    name = "speaker"
    capability: Capability | None = "speaker"

    def __init__(self, config: SpeakerSection) -> None:
        self.config = config
        self.relay: AmplifierRelay | None = None
        self.cache: MediaCache | None = None
        self.prefetcher: Prefetcher | None = None
        self.player: PlanPlayer | None = None
        self._context: DeviceContext | None = None
        self._tones: set[str] = set()
        self._live: dict[str, LiveFeed] = {}
        """Live announcements by occurrence id (ended ones kept a while, so late frames reopen none)."""

    # -- life -----------------------------------------------------------------------------

    def start(self, context: DeviceContext) -> None:
        cfg = self.config
        self._context = context
        self.relay = AmplifierRelay(cfg.relay_pin, active_high=cfg.relay_active_high,
                                    pin_factory=context.pin_factory)
        self.cache = MediaCache(cfg.cache_dir or context.data_dir / "media", base_url=cfg.hub_url,
                                token=cfg.token.get_secret_value() if cfg.token else None,
                                timeout_s=cfg.fetch_timeout_s)
        self.prefetcher = Prefetcher(self.cache, on_ready=self._media_ready)
        self.player = PlanPlayer(
            context.node_id, context.audio, self.cache, on_event=self._report, relay=self.relay,
            settings=PlayerSettings(warmup_s=cfg.warmup_s, relay_off_delay_s=cfg.relay_off_delay_s,
                                    max_delay_s=cfg.max_delay_s, play_now_wait_s=cfg.play_now_wait_s,
                                    volume=cfg.volume),
            prefetcher=self.prefetcher, state_path=context.data_dir / PLAYED_FILE,
            clock=context.wall_clock, trust=context.clock_trust, on_held=self._on_held,
        )
        context.stats.held_broadcasts = 0
        context.clock_trust.add_listener(self._on_trust_changed)
        saved = self._load_saved_plan()
        if saved is not None:
            self.player.set_plan(saved)
        self.prefetcher.start()
        self.player.start()
        context.route(context.topics.plan(context.node_id), self._on_plan)
        context.route(context.topics.live(context.node_id), self._on_live)
        context.commands.register("play-now", self._cmd_play_now)
        context.commands.register("stop", self._cmd_stop)
        context.commands.register("test-tone", self._cmd_test_tone)
        context.commands.register("speaker-status", self._cmd_status)
        context.commands.register("set-volume", self._cmd_set_volume)
        context.commands.register("amplifier", self._cmd_amplifier)

    def retune(self, settings: EdgeSettings) -> bool:
        """Take a new speaker config as the player runs when only its live values changed."""
        new = settings.speakers
        if new is None or self.player is None:
            return False
        new = new.model_copy(update={"hub_url": new.hub_url or settings.hub.url,
                                     "token": new.token or settings.hub.media_token})
        old = self.config
        fixed = set(SpeakerSection.model_fields) - set(LIVE_FIELDS)
        if any(getattr(new, name) != getattr(old, name) for name in fixed):
            return False
        changes = {LIVE_FIELDS[name]: getattr(new, name) for name in LIVE_FIELDS
                   if getattr(new, name) != getattr(old, name)}
        self.player.retune(**changes)
        self.config = new
        log.info("speaker retuned: %s", ", ".join(f"{k}={v}" for k, v in changes.items()) or "nothing")
        return True

    def identify(self, seconds: float, target: str | None) -> list[str]:
        """A short beep (at most 3 s) at a moderate volume, so a person on site finds the cluster."""
        if target not in (None, self.name) or self.player is None:
            return []
        self._tone(min(seconds, 3.0), 60, BEEP_HZ)
        return [self.name]

    def busy(self, within_s: float) -> tuple[str, float] | None:
        """A broadcast playing or due within ``within_s``: (why, until when); an update waits."""
        return self.player.busy(within_s) if self.player is not None else None

    def self_test(self) -> list[str]:
        """What an update's health window checks: the player runs and the amplifier relay answers."""
        problems = []
        if self.player is None or self.player._thread is None or not self.player._thread.is_alive():
            problems.append("the speaker's plan player does not run")
        if self.relay is not None and self.relay.is_on is None:
            problems.append("the amplifier relay does not answer")
        return problems

    def close(self) -> None:
        if self._context is not None:
            self._context.clock_trust.remove_listener(self._on_trust_changed)
        if self.player is not None:
            self.player.close()
        if self.prefetcher is not None:
            self.prefetcher.close()
        if self.relay is not None:
            self.relay.close()

    # -- plan -----------------------------------------------------------------------------

    def _on_plan(self, message: Message) -> None:
        if not message.payload:
            return  # a cleared retained plan: keep what we have
        try:
            plan = decode(Plan, message.payload)
        except PayloadError as exc:
            log.warning("ignoring a malformed plan: %s", exc.reason)
            return
        if self.player is not None and self.player.set_plan(plan):
            self._save_plan(plan)

    def _plan_path(self) -> Path:
        assert self._context is not None
        return self._context.data_dir / PLAN_FILE

    def _save_plan(self, plan: Plan) -> None:
        path = self._plan_path()
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(plan.to_bytes())
        os.replace(tmp, path)

    def _load_saved_plan(self) -> Plan | None:
        path = self._plan_path()
        if not path.exists():
            return None
        try:
            plan = decode(Plan, path.read_bytes())
        except PayloadError as exc:
            log.warning("ignoring the saved plan %s: %s", path, exc.reason)
            return None
        log.info("resuming saved plan revision %d (%d item(s))", plan.revision, len(plan.items))
        return plan

    def _on_live(self, message: Message) -> None:
        """A frame of a live announcement: to its feed; the first one heard opens it."""
        try:
            frame = decode(LiveFrame, message.payload)
        except PayloadError as exc:
            log.warning("ignoring a malformed live frame: %s", exc.reason)
            return
        feed = self._live.get(frame.occurrence_id)
        if feed is not None:
            feed.push(frame)
            return
        if frame.kind == "end" or self.player is None:
            return
        if len(self._live) >= 16:  # forget the oldest ended ones
            for occ in [o for o, f in self._live.items() if f.ended][:8]:
                del self._live[occ]
        feed = LiveFeed(frame)
        self._live[frame.occurrence_id] = feed
        item = PlanItem(occurrence_id=frame.occurrence_id, broadcast_id=frame.broadcast_id or 1,
                        title=frame.title or "Phát trực tiếp", start_at=utc_now(), media_sha256=NO_MEDIA,
                        media_url=LIVE_URL, duration_s=4 * 3600, priority=frame.priority, volume=frame.volume)
        self.player.play_live(item, feed)

    # -- events ---------------------------------------------------------------------------

    def _on_trust_changed(self, _trusted: bool) -> None:
        if self.player is not None:
            self.player.wake()

    def _on_held(self, held: int) -> None:
        if self._context is not None:
            self._context.stats.held_broadcasts = held

    def _media_ready(self, _sha: str) -> None:
        if self.player is not None:
            self.player.wake()

    def _report(self, event: PlaybackEvent) -> None:
        if event.occurrence_id in self._tones:
            if event.status in ("finished", "interrupted", "failed", "missed"):
                self._tones.discard(event.occurrence_id)
            return
        assert self._context is not None
        self._context.store_event("playback", lambda event_id, _seq: event.model_copy(
            update={"event_id": event_id}))

    # -- commands -------------------------------------------------------------------------

    def _cmd_play_now(self, args: Args) -> Result:
        assert self.player is not None and self.cache is not None
        occurrence = _required_str(args, "occurrence_id")
        sha = _required_str(args, "media_sha256")
        if not is_sha256(sha):
            raise CommandError("argument 'media_sha256' must be 64 lowercase hex digits")
        if "broadcast_id" not in args:
            raise CommandError("argument 'broadcast_id' is required")
        start_text = str_arg(args, "start_at")
        try:
            start = datetime.fromisoformat(start_text) if start_text else utc_now()
            item = PlanItem(
                occurrence_id=occurrence,
                broadcast_id=number_arg(args, "broadcast_id", 0, 1, 2**63 - 1),
                title=str_arg(args, "title") or "Phát ngay", start_at=start, media_sha256=sha,
                media_url=str_arg(args, "media_url") or f"media/{sha}",
                duration_s=number_arg(args, "duration_s", 1.0, 0.001, 4 * 3600.0),
                priority=str_arg(args, "priority") or "normal",  # type: ignore[arg-type]
                volume=number_arg(args, "volume", 100, 0, 100),
            )
        except (ValueError, ValidationError) as exc:
            raise CommandError(f"invalid play-now: {_first_error(exc)}") from None
        if not self.player.play_now(item, start=self._local_start(item.start_at if start_text else None)):
            raise CommandError(f"occurrence {occurrence!r} is already playing, queued or played")
        return {"queued": True, "occurrence_id": occurrence, "cached": self.cache.has(sha)}

    def _local_start(self, hub_start: datetime | None) -> float:
        """A play-now's start on this node's clock: the hub's ``start_at`` as it is on a
        trusted clock, moved by the offset otherwise, now while the offset is unknown."""
        assert self.player is not None and self._context is not None
        now = self.player.clock()
        if hub_start is None:
            return now
        local = self._context.clock_trust.to_local(hub_start.timestamp())
        return now if local is None else local

    def _cmd_stop(self, _args: Args) -> Result:
        assert self.player is not None
        return {"stopped": ",".join(self.player.stop())}

    def _cmd_status(self, _args: Args) -> Result:
        assert self.player is not None and self.cache is not None
        return {**self.player.status(), "cached_media": len(self.cache.cached())}

    def _cmd_set_volume(self, args: Args) -> Result:
        assert self.player is not None
        if "volume" not in args:
            raise CommandError("argument 'volume' is required")
        volume = number_arg(args, "volume", 100, 0, 100)
        self.player.retune(volume=volume)
        self.config = self.config.model_copy(update={"volume": volume})
        log.info("speaker volume set to %d %%", volume)
        return {"volume": volume}

    def _cmd_amplifier(self, args: Args) -> Result:
        assert self.player is not None
        on = args.get("on")
        if not isinstance(on, bool):
            raise CommandError(f"argument 'on' must be true or false, got {on!r}")
        return {"amplifier_on": self.player.hold_amplifier(on)}

    def _cmd_test_tone(self, args: Args) -> Result:
        seconds = number_arg(args, "seconds", 3.0, 0.5, 30.0)
        volume = number_arg(args, "volume", 50, 0, 100)
        freq = number_arg(args, "frequency_hz", 1000.0, 50.0, 10000.0)
        occurrence = self._tone(seconds, volume, freq)
        return {"queued": True, "occurrence_id": occurrence, "seconds": seconds}

    def _tone(self, seconds: float, volume: int, freq: float) -> str:
        """Queue a sine tone at normal priority (not reported to the hub); its occurrence id."""
        assert self.player is not None
        clip = sine_clip(seconds, freq)
        wav = clip.to_wav()
        occurrence = f"{TONE_PREFIX}{uuid.uuid4().hex[:12]}"
        item = PlanItem(occurrence_id=occurrence, broadcast_id=1, title="Âm thử", start_at=utc_now(),
                        media_sha256=hashlib.sha256(wav).hexdigest(), media_url="",
                        duration_s=seconds, priority="normal", volume=volume)
        self._tones.add(occurrence)
        self.player.play_now(item, clip=clip, start=self.player.clock())
        return occurrence


def sine_clip(seconds: float, freq: float, rate: int = TONE_RATE) -> AudioClip:
    n = int(seconds * rate)
    fade = max(1, int(0.01 * rate))
    samples = array.array("h", (
        int(0.5 * 32767 * min(1.0, i / fade, (n - i) / fade) * math.sin(2 * math.pi * freq * i / rate))
        for i in range(n)))
    return AudioClip(samples.tobytes(), rate, 1, f"test-tone-{freq:g}Hz")


def _required_str(args: Args, name: str) -> str:
    value = str_arg(args, name)
    if not value:
        raise CommandError(f"argument {name!r} is required")
    return value


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False)[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)


def from_settings(settings: EdgeSettings) -> list[SpeakerDevice]:
    """The node's speaker; its media URL and token default to the ``[hub]`` bootstrap section."""
    cfg = settings.speakers
    if cfg is None:
        return []
    return [SpeakerDevice(cfg.model_copy(update={"hub_url": cfg.hub_url or settings.hub.url,
                                                 "token": cfg.token or settings.hub.media_token}))]

