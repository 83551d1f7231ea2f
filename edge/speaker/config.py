"""The ``[speakers]`` table of an edge config: the node's loudspeaker cluster (amplifier
relay, media cache, where the hub serves media and the node's token for it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from thanthien.config import Section


class SpeakerSection(Section):
    hub_url: str | None = Field(
        None, pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="Base URL of the hub's API; plan items' media URLs are relative to it "
                    "(the hub serves them under /api/v1/, e.g. http://hub.local:8080/api/v1/). "
                    "Default: `hub.url`.",
    )
    token: SecretStr | None = Field(
        None, description="This node's bearer token for media downloads (never logged); default: "
                          "`hub.media_token`.")
    relay_pin: int | None = Field(
        None, ge=0, le=27, description="BCM GPIO of the amplifier power relay; none: no relay.")
    relay_active_high: bool = Field(True, description="False for relay boards switched by a low pin.")
    warmup_s: float = Field(
        1.5, ge=0, le=30, description="The amplifier is powered this long before the audio starts.")
    relay_off_delay_s: float = Field(
        5.0, ge=0, le=3600, description="The amplifier stays powered this long after the last audio.")
    volume: int = Field(100, ge=0, le=100, description="Node master volume (%), times each item's volume.")
    cache_dir: Path | None = Field(None, description="Media cache; default: <node.data_dir>/media.")
    max_delay_s: float = Field(
        300.0, ge=1, le=86400,
        description="An occurrence that cannot start within this long after its time is reported missed.")
    play_now_wait_s: float = Field(
        30.0, ge=0, le=600, description="How long a play-now command waits for its media download.")
    fetch_timeout_s: float = Field(30.0, gt=0, le=600, description="Time limit of one HTTP request.")
