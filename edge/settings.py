"""Configuration of one edge node, loaded from TOML (see config/edge.example.toml)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from thanthien.config import FileSettings, LoggingSettings, MqttSettings, Section
from thanthien.edge.cameras.config import CameraList
from thanthien.edge.speaker.config import SpeakerSection
from thanthien.protocol.ids import CounterId, DeviceId, NodeId

DEFAULT_BUTTONS = (
    (4, "Rất hài lòng"),
    (3, "Hài lòng"),
    (2, "Bình thường"),
    (1, "Không hài lòng"),
)


class NodeSection(Section):
    id: NodeId = Field(description="Node id; also its MQTT username and client id.")
    site: str = Field("", max_length=100, description="Site the node belongs to (free text).")
    hardware: Literal["gpio", "mock"] = Field(
        "gpio", description="`gpio`: gpiozero's default pin factory; `mock`: MockFactory."
    )
    data_dir: Path = Field(Path("var/edge"), description="Outbox and state live here.")


class HubSection(Section):
    """Where the node's hub is (written by ``thanthien edge enroll``): its API and the node's
    media token. Bootstrap settings, like ``node`` and ``mqtt``: they stay in the local file."""

    url: str | None = Field(
        None, pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="Base URL of the hub's API (e.g. http://hub.local:8080/api/v1/); speakers fetch "
                    "media under it unless `speakers.hub_url` says otherwise.")
    media_token: SecretStr | None = Field(
        None, description="This node's bearer token for media downloads (never logged); the "
                          "default of `speakers.token`.")


class UpdateSection(Section):
    """Remote updates (``edge/update``): where the releases live and the key they must be signed
    with. Bootstrap settings: they stay in the local file (``thanthien edge enroll`` writes them)."""

    root: Path | None = Field(
        None, description="The update root (`releases/<version>/`, the `current` link), e.g. /opt/thanthien; "
                          "unset: this node takes no remote updates.")
    public_key: Path | None = Field(
        None, description="The deployment's Ed25519 release key (PEM) the node got at enrollment.")
    health_window_s: float = Field(
        900.0, ge=0.5, le=24 * 3600,
        description="A new release is kept only after this long with MQTT connected, devices open and "
                    "their self-test passed; otherwise the node switches back.")
    max_starts: int = Field(3, ge=1, le=20,
                            description="A release on trial that starts this many times without being "
                                        "kept is rolled back (crash loop).")
    broadcast_margin_s: float = Field(
        300.0, ge=0, le=6 * 3600,
        description="The switch waits while a broadcast plays or is due within this long.")
    download_timeout_s: float = Field(120.0, ge=1, le=3600)


class TelemetrySection(Section):
    interval_s: float = Field(30.0, ge=1, le=3600, description="Seconds between telemetry.")


class OutboxSection(Section):
    resend_interval_s: float = Field(
        60.0, ge=0.1, le=3600,
        description="An unacked event is sent again after this long, then after twice that, four times, "
                    "... up to `resend_max_s` (and at once after every reconnect).",
    )
    resend_max_s: float = Field(
        900.0, ge=0.1, le=86400,
        description="The longest wait before an unacked event is sent again (the re-sends back off to it).",
    )
    batch_size: int = Field(
        50, ge=1, le=1000, description="Events sent per batch before waiting for their PUBACKs."
    )
    max_in_flight: int = Field(
        200, ge=1, le=100_000,
        description="Events out unacked at a time: the next ones go as the hub acks these (a backlog "
                    "drains at the hub's pace instead of flooding the broker).",
    )


class ClockSection(Section):
    """When the node trusts its wall clock (see ``edge/clock.py``)."""

    tolerance_s: float = Field(
        5.0, ge=0.1, le=3600,
        description="Without NTP, the clock is trusted while it is within this of the hub's time "
                    "(the hub's beacon; transit counts against it).")
    sync_flag: Path = Field(
        Path("/run/systemd/timesync/synchronized"),
        description="systemd-timesyncd's flag file: it exists once the clock is really synchronised.")
    check_s: float = Field(10.0, ge=0.1, le=600, description="How often NTP's state is read again.")
    when_unknown: Literal["trust", "hold"] = Field(
        "trust",
        description="Neither NTP (timesyncd, chrony) nor the hub can tell yet (not a Pi: a laptop, a "
                    "container): `trust` plays on the clock as it is, `hold` waits for the hub's time.")
    rating_hold_s: float = Field(
        86400.0, ge=0, le=30 * 86400,
        description="A rating pressed on an untrusted clock waits this long in the outbox for a corrected "
                    "time, then goes out marked `clock_uncertain`.")


class AudioSection(Section):
    output: Literal["pyaudio", "wav", "null"] = Field(
        "pyaudio", description="`pyaudio` for the sound card, `wav` to files, `null` to discard."
    )
    wav_dir: Path | None = Field(None, description="Where the `wav` output writes its files.")
    device_index: int | None = Field(None, ge=0, description="PyAudio output device (default one).")
    loopback_device_index: int | None = Field(
        None, ge=0, description="PyAudio input of a microphone by the horn or a line-in from the amplifier's "
                                "output, metered while the speaker plays (proof of play); none: not fitted.")
    realtime: bool = Field(
        False, description="`wav` output: each clip takes as long as it lasts (as a sound card would).")


class ButtonSection(Section):
    pin: int = Field(ge=0, le=27, description="BCM GPIO number.")
    score: int = Field(ge=1, le=4, description="4 best .. 1 worst.")
    label: str = Field(min_length=1, max_length=40)


def _default_buttons() -> list[ButtonSection]:
    return [ButtonSection(pin=pin, score=score, label=label)
            for pin, (score, label) in zip((5, 6, 13, 19), DEFAULT_BUTTONS, strict=True)]


class RatingBoxSection(Section):
    id: DeviceId
    counter: CounterId = Field(description="The counter (quầy) this box stands at.")
    buttons: list[ButtonSection] = Field(default_factory=_default_buttons, min_length=1, max_length=8)
    led_pin: int | None = Field(None, ge=0, le=27, description="Thank-you LED (BCM).")
    response_interval_s: float = Field(
        5.0, ge=0, le=120, description="Repeat presses on this box within this time are ignored."
    )
    bounce_ms: float = Field(
        30.0, ge=0, le=500, description="A press must hold this long to count (contact bounce)."
    )

    @model_validator(mode="after")
    def _unique_scores(self) -> RatingBoxSection:
        scores = [b.score for b in self.buttons]
        if len(scores) != len(set(scores)):
            raise ValueError("two buttons of one box have the same score")
        return self


REMOTE_SECTIONS: tuple[str, ...] = ("telemetry", "outbox", "clock", "logging", "rating_boxes", "cameras",
                                    "speakers")
"""The sections the hub may own (``NodeConfig.settings``, ``edge/remote_config.py``); ``node``,
``mqtt``, ``hub``, ``update`` and ``audio`` are the node's bootstrap and stay in its local file."""


class EdgeSettings(FileSettings):
    model_config = SettingsConfigDict(
        extra="forbid", env_prefix="THANTHIEN_EDGE_", env_nested_delimiter="__"
    )

    node: NodeSection
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    hub: HubSection = Field(default_factory=HubSection)
    update: UpdateSection = Field(default_factory=UpdateSection)
    telemetry: TelemetrySection = Field(default_factory=TelemetrySection)
    outbox: OutboxSection = Field(default_factory=OutboxSection)
    clock: ClockSection = Field(default_factory=ClockSection)
    audio: AudioSection = Field(default_factory=AudioSection)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    rating_boxes: list[RatingBoxSection] = Field(default_factory=list, max_length=8)
    cameras: CameraList = Field(default_factory=list)
    speakers: SpeakerSection | None = Field(
        None, description="The loudspeaker cluster this node drives; none: no speaker.")

    @property
    def mqtt_username(self) -> str:
        return self.mqtt.username or self.node.id

    def problems(self) -> list[str]:
        out = []
        pins: Counter[int] = Counter()
        for box in self.rating_boxes:
            pins.update(b.pin for b in box.buttons)
            if box.led_pin is not None:
                pins[box.led_pin] += 1
        if self.speakers is not None and self.speakers.relay_pin is not None:
            pins[self.speakers.relay_pin] += 1
        out += [f"rating_boxes: GPIO {pin} is used {n} times" for pin, n in pins.items() if n > 1]
        ids = Counter(box.id for box in self.rating_boxes)
        out += [f"rating_boxes: id {i!r} appears {n} times" for i, n in ids.items() if n > 1]
        if self.audio.output == "wav" and self.audio.wav_dir is None:
            out.append("audio.wav_dir: required when audio.output is 'wav'")
        if self.speakers is not None and self.speakers.hub_url is None and self.hub.url is None:
            out.append("speakers.hub_url: required when hub.url is not set (where the hub serves media)")
        if self.update.root is not None and self.update.public_key is None:
            out.append("update.public_key: required with update.root (the release key from enrollment)")
        if self.update.public_key is not None and not self.update.public_key.is_file():
            out.append(f"update.public_key: {self.update.public_key} is not a file")
        if self.mqtt.username not in (None, self.node.id):
            out.append("mqtt.username: must equal node.id (the broker ACL keys on it)")
        return out
