"""The edge agent: one process per Raspberry Pi that wires config -> devices -> MQTT.

Life of an agent::

    agent = EdgeAgent(settings, config_path=path)
    agent.start()          # lock data_dir, session += 1, open outbox, start devices, connect
    ...                    # runs until agent.request_stop() (SIGTERM/SIGINT in the CLI)
    agent.stop()           # devices closed, retained ``offline`` sent, disconnect; safe twice

or ``with EdgeAgent(settings) as agent: ...``.

MQTT life (through :class:`thanthien.mqtt.MqttLink`, the one paho wrapper): the client id
is the node id, the session is persistent, the Last Will is a retained ``lost``
:class:`NodeState` carrying this run's session number, every (re)connect publishes a
retained ``online`` with the same number, re-sends the outbox and sends telemetry.

``hardware = "mock"`` gives the agent a gpiozero ``MockFactory``; :attr:`EdgeAgent.pin_factory`
lets the simulator and tests drive its pins (``agent.pin_factory.pin(5).drive_low()``).

Clocks: ``clock`` is monotonic (response intervals, resends, the clock facts of events),
``wall_clock`` the node's epoch time (presses, the plan player). :attr:`EdgeAgent.clock_trust`
says whether the wall clock may be trusted (NTP, or the hub's time beacon on ``hub/state``;
``edge/clock.py``); until it is, ratings are held in the outbox and sent with a corrected
``pressed_at`` once the true time of their monotonic instant is known.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

from gpiozero import Device as GpioDevice
from gpiozero import Factory
from gpiozero.pins.mock import MockFactory

from thanthien import __version__
from thanthien.config import ConfigError, load_config
from thanthien.edge.audio import AudioOutput, NullOutput, open_output
from thanthien.edge.clock import HOLD_KINDS, ClockTrust, ClockWatch, NtpProbe, ntp_probe, retime
from thanthien.edge.commands import (
    Args,
    CommandError,
    CommandService,
    CommandTable,
    Result,
    number_arg,
    str_arg,
)
from thanthien.edge.context import Device, DeviceContext, Identifiable, NodeStats, Retunable, RouteTable
from thanthien.edge.devices import DeviceFactory, build_devices
from thanthien.edge.outbox import EventFactory, HeldEvent, Outbox, StoredEvent
from thanthien.edge.remote_config import ConfigRefused, ConfigStore, RemoteConfig, describe, merge
from thanthien.edge.sender import OutboxSender
from thanthien.edge.session import AgentLock, next_session
from thanthien.edge.settings import EdgeSettings
from thanthien.edge.telemetry import SystemProbe, TelemetryLoop, run_command
from thanthien.edge.update.updater import UpdateConfig, UpdateHost, Updater
from thanthien.mqtt import Message, MqttLink, Will
from thanthien.protocol import EVENT_KINDS, EventKind, Topics
from thanthien.protocol.payloads import (
    Ack,
    ConfigStatus,
    HubState,
    NodeConfig,
    NodeState,
    Payload,
    PayloadError,
    ReleaseStatus,
    Telemetry,
    decode,
    utc_now,
)
from thanthien.protocol.topics import SPEC_BY_KIND

log = logging.getLogger(__name__)

AGENT_VERSION = __version__
D = TypeVar("D")
DEVICE_SECTIONS = ("rating_boxes", "cameras", "speakers", "hub")
"""The sections the devices are built from (``edge/devices``); a change rebuilds them (or retunes)."""


def make_pin_factory(hardware: str) -> Factory:
    """``mock``: a private MockFactory; ``gpio``: gpiozero's default (lgpio on a Pi 5)."""
    if hardware == "mock":
        return MockFactory()
    GpioDevice.ensure_pin_factory()
    assert GpioDevice.pin_factory is not None
    return GpioDevice.pin_factory


class EdgeAgent:
    def __init__(
        self,
        settings: EdgeSettings,
        *,
        config_path: Path | None = None,
        audio: AudioOutput | None = None,
        pin_factory: Factory | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        boot_id: str | None = None,
        ntp: NtpProbe | None = None,
        probe: SystemProbe | None = None,
        device_factories: Sequence[DeviceFactory] | None = None,
    ) -> None:
        self.settings = settings
        """The settings in force: the local file with the hub's config over it (``edge/remote_config.py``)."""
        self.local_settings = settings
        """The local file alone (the bootstrap, and every section until the hub sends its config)."""
        self.config_path = config_path
        self.node_id = settings.node.id
        self.topics = Topics(settings.mqtt.root)
        self.data_dir = settings.node.data_dir.resolve()
        self.clock = clock
        self.wall_clock = wall_clock
        self.stop_event = threading.Event()
        self._stop_requested = threading.Event()
        self.pin_factory: Factory = pin_factory or make_pin_factory(settings.node.hardware)
        self._audio = audio
        self._owns_audio = audio is None
        self._probe = probe
        self._device_factories = device_factories
        self.stats = NodeStats()
        self.commands = CommandTable(self.node_id)
        self.devices: list[Device] = []
        self.session = 0
        self.started_at = 0.0
        self._lock = AgentLock(self.data_dir)
        self._devices_lock = threading.Lock()
        self._started = False
        self._stopped = False
        self.outbox: Outbox | None = None
        self.link: MqttLink | None = None
        self.sender: OutboxSender | None = None
        self._telemetry: TelemetryLoop | None = None
        self._command_service: CommandService | None = None
        self._routes: RouteTable | None = None
        self._core_commands: set[str] = set()
        self.remote: RemoteConfig | None = None
        """The hub's config of this node: the version in force, or why one was refused."""
        self._apply_lock = threading.RLock()
        self.on_restart: Callable[[], None] | None = None
        """What the ``restart`` command does once it has answered (the CLI runs the agent again;
        the simulator restarts it in place); without it the agent only stops."""
        self.restart_requested = False
        self.update_restart = False
        """The updater switched ``current`` (or back): the process must end so that systemd starts
        the release ``current`` points at (``thanthien edge run`` exits with ``EXIT_SWITCHED``)."""
        self.updater: Updater | None = None
        self.hub_state: HubState | None = None
        """The hub's retained presence as last seen (``None`` until the broker sends it)."""
        c = settings.clock
        self.clock_trust = ClockTrust(tolerance_s=c.tolerance_s, wall=wall_clock, mono=clock,
                                      boot_id=boot_id, ntp=ntp or self._read_ntp,
                                      when_unknown=c.when_unknown)
        """Whether the wall clock may be trusted (``edge/clock.py``)."""
        self._clock_watch: ClockWatch | None = None

    def _read_ntp(self) -> bool | None:
        run = self._probe.run if self._probe is not None else run_command
        return ntp_probe(self.settings.clock.sync_flag, run)()

    # -- helpers for devices and tests ------------------------------------------------------
    @property
    def audio(self) -> AudioOutput:
        if self._audio is None:
            a = self.settings.audio
            try:
                self._audio = open_output(a.output, wav_dir=a.wav_dir, device_index=a.device_index,
                                          realtime=a.realtime, loopback_device_index=a.loopback_device_index)
            except Exception as exc:  # no sound card must not stop the buttons from working
                log.error("audio output %r unavailable (%s); continuing without sound", a.output, exc)
                self._audio = NullOutput()
        return self._audio

    def device(self, kind: type[D]) -> D:
        """The running device of this class (e.g. ``agent.device(RatingBoxes)``)."""
        for device in self.devices:
            if isinstance(device, kind):
                return device
        raise LookupError(f"no {kind.__name__} on node {self.node_id}")

    def state(self, state: str) -> NodeState:
        return NodeState(node=self.node_id, state=state, session=self.session, at=utc_now(),
                         agent_version=AGENT_VERSION, capabilities=self._capabilities())

    def _capabilities(self) -> list[str]:
        caps = [d.capability for d in self.devices if d.capability is not None]
        return list(dict.fromkeys(caps))

    # -- life -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._lock.acquire()
        self._started = True
        self.started_at = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.session = next_session(self.data_dir)
        self._adopt_saved_config()
        s = self.settings
        self.outbox = Outbox.in_dir(self.data_dir)
        if self._probe is None:
            self._probe = SystemProbe(self.data_dir)
        self.clock_trust.refresh()  # before any device plays or stores on the wall clock
        self.clock_trust.add_listener(self._on_trust_changed)
        self._clock_watch = ClockWatch(self.clock_trust, self.stop_event, s.clock.check_s)
        # Devices first, so the Will and the birth list their capabilities.
        self.devices = build_devices(s, self._device_factories)
        will = Will(self.topics.node_state(self.node_id), self.state("lost").to_bytes())
        self.link = MqttLink(client_id=self.node_id, settings=s.mqtt, username=s.mqtt_username,
                             will=will, persistent=True, on_connected=self._on_connected)
        self._routes = RouteTable(self.link.route)
        self.sender = OutboxSender(
            self.outbox, self.link, partial(self.topics.event, node=self.node_id), self.stop_event,
            resend_interval_s=s.outbox.resend_interval_s, batch_size=s.outbox.batch_size,
            max_in_flight=s.outbox.max_in_flight, resend_max_s=s.outbox.resend_max_s,
            clock=self.clock, prepare=self._settle_held)
        self._register_core_commands()
        self._command_service = CommandService(self.commands, self.topics.command_result(self.node_id),
                                               self._send_reply, self.stop_event)
        self._telemetry = TelemetryLoop(self.publish_telemetry, self.stop_event, s.telemetry.interval_s)
        self.link.route(self.topics.ack(self.node_id), self._on_ack)
        assert self.remote is not None
        self.link.route(self.topics.node_config(self.node_id), self.remote.on_message)
        # QoS 0: a hub time beacon queued while the node was away must not arrive late
        self.link.route(self.topics.hub_state(), self._on_hub_state, qos=0)
        self.link.route(self.topics.command(self.node_id, "+"), self._command_service.on_message)
        self.updater = self._make_updater(s)
        if self.updater is not None:
            self.link.route(self.topics.release_offer(self.node_id), self.updater.on_message)
        self._start_devices(self.devices, s)
        self.sender.start()
        self._telemetry.start()
        self._command_service.start()
        self._clock_watch.start()
        self.remote.start()
        if self.updater is not None:
            self.updater.begin()
        self.link.start()
        log.info("edge agent %s started: session %d, %d device(s), %s, outbox %s (%d pending)",
                 self.node_id, self.session, len(self.devices), describe(self.remote.current),
                 self.outbox.path, self.outbox.depth())

    def _adopt_saved_config(self) -> None:
        """The last good hub config kept in the data directory, merged over the local file, so
        a node restarted while the broker is unreachable runs what the hub last gave it."""
        store = ConfigStore(self.data_dir, self.node_id)
        self.remote = RemoteConfig(store, self._apply_remote, self._publish_config_status, self.stop_event,
                                   lambda: self.session)
        saved = store.load()
        try:
            self.settings = merge(self.local_settings, saved)
        except ConfigRefused as exc:
            log.error("the saved hub config version %d is refused (%s); running the local file",
                      saved.version if saved else 0, exc)
            self.remote.adopt_saved(saved, str(exc))
            return
        self.remote.adopt_saved(saved)

    def _context(self, settings: EdgeSettings) -> DeviceContext:
        assert self._routes is not None
        return DeviceContext(
            node_id=self.node_id, session=self.session, settings=settings, topics=self.topics,
            data_dir=self.data_dir, audio=self.audio, pin_factory=self.pin_factory,
            stop_event=self.stop_event, clock=self.clock, stats=self.stats, commands=self.commands,
            store=self.store_event, send=self._send, routes=self._routes, wall_clock=self.wall_clock,
            clock_trust=self.clock_trust)

    def _start_devices(self, devices: list[Device], settings: EdgeSettings) -> None:
        context = self._context(settings)
        started: list[Device] = []
        try:
            for device in devices:
                device.start(context)
                started.append(device)
        except BaseException:
            for device in reversed(started):
                device.close()
            raise

    def healthy(self) -> bool:
        """The agent's own threads run and its outbox answers (for the systemd watchdog)."""
        if not self._started or self._stopped or self.outbox is None:
            return False
        workers = (self.sender, self._telemetry, self._command_service, self._clock_watch, self.remote,
                   *((self.updater,) if self.updater is not None else ()))
        if not all(w is not None and w.alive for w in workers):
            return False
        try:
            self.outbox.depth()
        except Exception:
            log.exception("outbox does not answer")
            return False
        return True

    def request_stop(self) -> None:
        """Ask :meth:`wait_until_stop_requested` to return (safe in a signal handler)."""
        self._stop_requested.set()

    def wait_until_stop_requested(self, timeout: float | None = None) -> bool:
        return self._stop_requested.wait(timeout)

    def stop(self) -> None:
        """Close devices, flush nothing new, publish retained ``offline``, disconnect. Safe twice."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        self._stop_requested.set()
        self.stop_event.set()
        with self._devices_lock:
            for device in reversed(self.devices):
                try:
                    device.close()
                except Exception:
                    log.exception("closing %s failed", device.name)
        for worker in (self.sender, self._telemetry, self._command_service, self._clock_watch, self.remote,
                       self.updater):
            if worker is not None:
                worker.join()
        self.clock_trust.remove_listener(self._on_trust_changed)
        if self.link is not None:
            state = self.state("offline")
            self.link.stop(final=(self.topics.node_state(self.node_id), state.to_bytes(), True))
        if self.outbox is not None:
            self.outbox.close()
        if self._owns_audio and self._audio is not None:
            self._audio.close()
        self._lock.release()
        log.info("edge agent %s stopped (session %d)", self.node_id, self.session)

    def __enter__(self) -> EdgeAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- MQTT -------------------------------------------------------------------------------
    def _on_connected(self, link: MqttLink, _session_present: bool) -> None:
        link.publish(self.topics.node_state(self.node_id), self.state("online").to_bytes(),
                     qos=1, retain=True)
        if self.sender is not None:
            self.sender.on_connected()
        if self._telemetry is not None:
            self._telemetry.poke()
        if self.remote is not None:
            self.remote.report()
        if self.updater is not None:
            self.updater.report()

    # -- updates ----------------------------------------------------------------------------
    def _make_updater(self, s: EdgeSettings) -> Updater | None:
        u = s.update
        if u.root is None or u.public_key is None:
            return None
        from thanthien import releases

        try:
            key = releases.load_public(u.public_key.read_bytes())
        except (OSError, releases.BundleError) as exc:
            log.error("remote updates off: %s", exc)
            return None
        token = s.hub.media_token.get_secret_value() if s.hub.media_token else None
        config = UpdateConfig(root=u.root, public_key=key, hub_url=s.hub.url, token=token,
                              health_window_s=u.health_window_s, broadcast_margin_s=u.broadcast_margin_s,
                              max_starts=u.max_starts, download_timeout_s=u.download_timeout_s)
        host = UpdateHost(node_id=self.node_id, running_version=AGENT_VERSION, session=lambda: self.session,
                          connected=lambda: self.link is not None and self.link.connected.is_set(),
                          problems=self.update_problems, busy=self.busy, restart=self._update_restart,
                          publish=self._publish_release_status)
        return Updater(host, config, self.stop_event)

    def update_problems(self) -> list[str]:
        """What keeps a release from being kept: the agent's threads, its devices' self-tests."""
        problems = []
        if not self.healthy():
            problems.append("the agent's threads or outbox do not answer")
        with self._devices_lock:
            devices = list(self.devices)
        for device in devices:
            test = getattr(device, "self_test", None)
            if test is not None:
                try:
                    problems += test()
                except Exception as exc:
                    problems.append(f"{device.name}: self-test failed: {type(exc).__name__}: {exc}")
        return problems

    def busy(self, within_s: float) -> tuple[str, float] | None:
        """A broadcast playing or due within ``within_s`` on any device: (why, until when)."""
        with self._devices_lock:
            devices = list(self.devices)
        for device in devices:
            check = getattr(device, "busy", None)
            if check is not None:
                found = check(within_s)
                if found is not None:
                    return found  # type: ignore[no-any-return]
        return None

    def _update_restart(self) -> None:
        self.update_restart = True
        self.request_stop()

    def _publish_release_status(self, status: ReleaseStatus) -> None:
        if self.link is not None:
            self.link.publish(self.topics.release_status(self.node_id), status.to_bytes(), qos=1, retain=True)

    def _publish_config_status(self, status: ConfigStatus) -> None:
        if self.link is not None:
            self.link.publish(self.topics.config_status(self.node_id), status.to_bytes(), qos=1, retain=True)

    def _apply_remote(self, config: NodeConfig) -> list[str]:
        """Apply a config from the hub over the local file (``RemoteConfig`` calls it on its worker)."""
        merged = merge(self.local_settings, config)
        try:
            result = self.apply_settings(merged)
        except CommandError as exc:
            raise ConfigRefused(str(exc)) from None
        return [name for name in str(result["not_applied"]).split(",") if name]

    def _send(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if self.link is not None:
            self.link.publish(topic, payload, qos=qos, retain=retain)

    def _send_reply(self, topic: str, payload: bytes, properties: object) -> None:
        if self.link is not None:
            self.link.publish(topic, payload, qos=1, properties=properties)  # type: ignore[arg-type]

    def store_event(self, kind: EventKind, make: EventFactory) -> StoredEvent:
        """Commit an event of one of the protocol's :data:`EVENT_KINDS` to the outbox and wake
        the sender (which publishes it on ``topics.event(kind, node)``). Returns after the commit.

        Made on an untrusted wall clock, the event's node-clock times are corrected at once if
        the true time is known; otherwise a rating is held (until :meth:`_settle_held` can
        correct it) and a playback report goes out marked ``clock_uncertain``."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(EVENT_KINDS)})")
        if self.outbox is None or self.sender is None:
            raise RuntimeError("the agent is not running")
        facts = self.clock_trust.facts()
        true = None if facts.trusted else self.clock_trust.true_time(facts.mono, facts.boot_id)
        hold = not facts.trusted and true is None and kind in HOLD_KINDS

        def build(event_id: uuid.UUID, seq: int) -> Payload:
            payload = make(event_id, seq)
            if facts.trusted or hold:
                return payload
            if true is not None:
                return retime(payload, kind, true - facts.wall, uncertain=False)
            return retime(payload, kind, 0.0, uncertain=True)

        event = self.outbox.store(kind, build, facts=facts, held=hold)
        if hold:
            log.info("%s %s held until the node knows the right time", kind, event.event_id)
        self.sender.poke()
        return event

    def _settle_held(self) -> int:
        """Release the held events whose true time is now known (corrected), or that cannot
        be corrected any more (another boot) or waited ``clock.rating_hold_s`` (uncertain)."""
        if self.outbox is None:
            return 0
        released = 0
        for event in self.outbox.held():
            payload = self._settled_payload(event)
            if payload is not None and self.outbox.release(event.id, payload):
                released += 1
        return released

    def _settled_payload(self, event: HeldEvent) -> bytes | None:
        trust = self.clock_trust
        model = SPEC_BY_KIND[event.kind].payload
        try:
            payload = decode(model, event.payload)
        except PayloadError as exc:  # cannot happen for what this agent stored; never block the queue
            log.error("held event %s unreadable (%s); sending it as it is", event.event_id, exc.reason)
            return event.payload
        same_boot = event.mono is not None and event.boot_id == trust.boot_id
        true = trust.true_time(event.mono, trust.boot_id) if same_boot and event.mono is not None else None
        if true is not None and event.wall is not None:
            fixed = retime(payload, event.kind, true - event.wall, uncertain=False)
            log.info("%s %s: time corrected by %+.1f s", event.kind, event.event_id, true - event.wall)
            return fixed.to_bytes()
        waited = trust.mono() - event.mono if same_boot and event.mono is not None else None
        if waited is not None and waited < self.settings.clock.rating_hold_s:
            return None
        log.warning("%s %s: time cannot be corrected (%s); sent marked uncertain", event.kind,
                    event.event_id, "another boot" if waited is None else f"waited {waited:.0f} s")
        return retime(payload, event.kind, 0.0, uncertain=True).to_bytes()

    def _on_trust_changed(self, _trusted: bool) -> None:
        if self.sender is not None:
            self.sender.poke()
        if self._telemetry is not None:
            self._telemetry.poke()

    def _on_ack(self, message: Message) -> None:
        try:
            ack = decode(Ack, message.payload)
        except PayloadError as exc:
            log.warning("ignoring a malformed ack: %s", exc.reason)
            return
        if self.outbox is None or self.sender is None:
            return
        removed = self.outbox.ack(ack.kind, ack.event_ids)
        self.sender.on_acked(ack.event_ids)
        log.debug("hub acked %d %s event(s), %d removed from the outbox", len(ack.event_ids),
                  ack.kind, removed)

    def _on_hub_state(self, message: Message) -> None:
        if not message.payload:  # retained state cleared
            self.hub_state = None
            return
        try:
            state = decode(HubState, message.payload)
        except PayloadError as exc:
            log.warning("ignoring a malformed hub state: %s", exc.reason)
            return
        if self.hub_state is None or self.hub_state.state != state.state:
            log.info("hub is %s (version %s)", state.state, state.version)
        self.hub_state = state
        # The beacon is live and QoS 0: a retained copy, or a QoS 1 presence that waited in this
        # node's persistent session while it was away, may be hours (or a test clock) old.
        if state.state == "online" and not message.retain and message.qos == 0:
            self.clock_trust.note_hub_time(state.at)

    def publish_telemetry(self) -> Telemetry | None:
        """Collect vitals and publish them (QoS 0) if connected; returns what was sent."""
        if self.link is None or self._probe is None or self.outbox is None:
            return None
        if not self.link.connected.is_set():
            return None
        v = self._probe.collect()
        clock = self.clock_trust.view()
        offset = clock.hub_offset_s
        telemetry = Telemetry(
            node=self.node_id, session=self.session, at=utc_now(), uptime_s=v.uptime_s,
            agent_version=AGENT_VERSION, cpu_temp_c=v.cpu_temp_c, load_1m=v.load_1m,
            load_5m=v.load_5m, load_15m=v.load_15m, mem_used_pct=v.mem_used_pct,
            disk_used_pct=v.disk_used_pct, disk_free_mb=v.disk_free_mb,
            outbox_depth=self.outbox.depth(), ignored_presses=self.stats.ignored_presses,
            clock_synced=v.clock.synced if v.clock.synced is not None else clock.ntp_synced,
            clock_offset_ms=v.clock.offset_ms, clock_trusted=clock.trusted,
            hub_offset_ms=None if offset is None else round(offset * 1000, 1),
            held_broadcasts=self.stats.held_broadcasts)
        self.link.publish(self.topics.telemetry(self.node_id), telemetry.to_bytes(), qos=0)
        return telemetry

    # -- commands ---------------------------------------------------------------------------
    def _register_core_commands(self) -> None:
        self.commands.register("ping", self._cmd_ping)
        self.commands.register("identify", self._cmd_identify)
        self.commands.register("reload-config", self._cmd_reload)
        self.commands.register("restart", self._cmd_restart)
        self._core_commands = set(self.commands.names())

    def _cmd_ping(self, _args: Args) -> Result:
        return {"pong": True, "session": self.session, "agent_version": AGENT_VERSION,
                "uptime_s": round(time.monotonic() - self.started_at, 1),
                "outbox_depth": self.outbox.depth() if self.outbox else 0,
                "hub_state": self.hub_state.state if self.hub_state else None,
                "clock_trusted": self.clock_trust.trusted()}

    def _cmd_identify(self, args: Args) -> Result:
        seconds = number_arg(args, "seconds", 10.0, 1.0, 300.0)
        target = str_arg(args, "box")
        with self._devices_lock:
            ids = [i for d in self.devices if isinstance(d, Identifiable)
                   for i in d.identify(seconds, target)]
        if not ids:
            raise CommandError(f"nothing to identify{f' with id {target!r}' if target else ''} on this node")
        return {"identifying": ",".join(ids), "seconds": seconds}

    def _cmd_reload(self, _args: Args) -> Result:
        """Read the local file again and apply it with the hub's config in force over it."""
        local = self.local_settings
        if self.config_path is not None:
            try:
                local = load_config(EdgeSettings, self.config_path)
            except ConfigError as exc:
                raise CommandError("; ".join(exc.problems)) from None
        current = self.remote.current if self.remote is not None else None
        try:
            merged = merge(local, current)
        except ConfigRefused as exc:
            raise CommandError(f"the hub config version {current.version if current else 0} does not fit "
                               f"the local file: {exc}") from None
        result = self.apply_settings(merged)
        self.local_settings = local
        if self.remote is not None:
            self.remote.report()
        return {**result, "config_version": self.remote.version if self.remote is not None else 0}

    def _cmd_restart(self, _args: Args) -> Result:
        """Stop and start the agent again once this answer is out (outbox and plan are on disk)."""
        self.commands.defer(self._restart)
        return {"restarting": True, "session": self.session}

    def _restart(self) -> None:
        log.warning("restart asked by the hub")
        self.restart_requested = True
        if self.on_restart is not None:
            self.on_restart()
        else:
            self.request_stop()

    def apply_settings(self, new: EdgeSettings) -> Result:
        """Apply a new config live: telemetry, outbox, clock and logging take the new values;
        devices are rebuilt when their sections changed, unless a device can take the change as
        it runs (a speaker's volume or warm-up: ``retune``). Node, MQTT and audio changes need a
        restart (reported, not applied)."""
        with self._apply_lock:
            return self._apply_settings(new)

    def _apply_settings(self, new: EdgeSettings) -> Result:
        old = self.settings
        restart = [name for name in ("node", "mqtt", "audio")
                   if getattr(new, name) != getattr(old, name)]
        merged = new.model_copy(update={name: getattr(old, name) for name in restart})
        changed = [name for name in DEVICE_SECTIONS if getattr(merged, name) != getattr(old, name)]
        with self._devices_lock:
            if changed and not self._retune(changed, merged):
                self._rebuild_devices(old, merged)
            self.settings = merged
        if self._telemetry is not None:
            self._telemetry.interval_s = merged.telemetry.interval_s
        self.clock_trust.tolerance_s = merged.clock.tolerance_s
        self.clock_trust.when_unknown = merged.clock.when_unknown
        if self._clock_watch is not None:
            self._clock_watch.interval_s = merged.clock.check_s
        if self.sender is not None:
            self.sender.resend_interval_s = merged.outbox.resend_interval_s
            self.sender.batch_size = merged.outbox.batch_size
            self.sender.max_in_flight = merged.outbox.max_in_flight
            self.sender.resend_max_s = merged.outbox.resend_max_s
        logging.getLogger().setLevel(merged.logging.level)
        log.info("config applied: %d device(s)%s%s", len(self.devices),
                 f", changed: {', '.join(changed)}" if changed else "",
                 f"; restart needed for {', '.join(restart)}" if restart else "")
        return {"devices": len(self.devices), "restart_required": bool(restart),
                "not_applied": ",".join(restart)}

    def _retune(self, changed: list[str], new: EdgeSettings) -> bool:
        """Give the changed sections to the running devices that take them live; False when a
        device must be rebuilt instead."""
        tunable = [d for d in self.devices if isinstance(d, Retunable)]
        if not tunable or not set(changed) <= {"speakers"}:
            return False
        return all(d.retune(new) for d in tunable)

    def _rebuild_devices(self, old: EdgeSettings, new: EdgeSettings) -> None:
        for device in reversed(self.devices):
            device.close()
        assert self._routes is not None
        self._routes.clear_handlers()
        for name in set(self.commands.names()) - self._core_commands:
            self.commands.unregister(name)
        try:
            self.devices = build_devices(new, self._device_factories)
            self._start_devices(self.devices, new)
        except Exception as exc:
            log.exception("devices of the new config failed to start; keeping the old config")
            self.devices = build_devices(old, self._device_factories)
            self._start_devices(self.devices, old)
            raise CommandError(f"new config not applied: {type(exc).__name__}: {exc}") from None
