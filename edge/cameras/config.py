"""The ``[[cameras]]`` tables of an edge config: what to probe, how often, and the limits
that turn measurements into a state."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, PrivateAttr, SecretStr, model_validator

from thanthien.config import Section
from thanthien.edge.cameras.auth import Credentials
from thanthien.edge.cameras.urls import Endpoint, parse_endpoint
from thanthien.protocol.ids import DeviceId


class CameraSection(Section):
    id: DeviceId = Field(description="Camera id; a level of its health topic.")
    rtsp_url: str = Field(description="rtsp://host[:port]/path (credentials may be inline).")
    snapshot_url: str | None = Field(
        None, description="http://... JPEG snapshot (ISAPI/CGI); without it one RTSP frame is grabbed "
                          "with ffmpeg."
    )
    username: str | None = Field(None, max_length=128, description="Wins over credentials in the URLs.")
    password: SecretStr | None = Field(None, description="Camera password (never logged or published).")
    interval_s: float = Field(60.0, ge=0.05, le=3600, description="Seconds between checks.")
    publish_interval_s: float = Field(
        300.0, ge=0.05, le=86400, description="Health is re-published at least this often."
    )
    connect_timeout_s: float = Field(3.0, gt=0, le=60, description="TCP connect limit.")
    rtsp_timeout_s: float = Field(5.0, gt=0, le=60, description="Limit for the whole RTSP exchange.")
    snapshot_timeout_s: float = Field(5.0, gt=0, le=60, description="Limit for the HTTP snapshot.")
    frame_timeout_s: float = Field(10.0, gt=0, le=120, description="Limit for an ffmpeg frame grab.")
    decode_timeout_s: float = Field(5.0, gt=0, le=60, description="Limit for decoding one snapshot.")
    slow_ms: float = Field(
        1000.0, gt=0, le=60000, description="A connect or answer slower than this makes the camera degraded."
    )
    black_brightness: float = Field(
        16.0, ge=0, le=255,
        description="Grey level (0-255) the brightest part of the picture (its brightest 0.1 %) must reach; "
                    "below it the picture is black.",
    )
    blank_contrast: float = Field(
        4.0, ge=0, le=128, description="Grey standard deviation below which the picture is blank."
    )
    osd_region: tuple[float, float, float, float] | None = Field(
        None,
        description="Where the camera draws its on-screen text (clock, name): left, top, right, bottom as "
                    "fractions 0-1 of the picture. Left out of the black and blank measures, so a covered "
                    "lens with the clock running is still black; its changes still count as a live picture.",
    )
    frozen_checks: int = Field(
        3, ge=2, le=1000, description="Pictures in a row that must be the same to call it frozen."
    )
    frozen_change_pct: float = Field(
        0.005, ge=0, le=100,
        description="Share of the picture (percent) that must change by more than 32 grey levels between two "
                    "checks for them to be different pictures; 0.005 % is 3 pixels of the 320x180 thumbnail.",
    )
    hold_checks: int = Field(
        2, ge=1, le=100, description="Checks a new state must hold before it is reported."
    )

    _url_credentials: dict[str, Credentials] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> CameraSection:
        # URLs are checked here rather than per field so that an error never echoes the
        # URL back: it may carry a password. Credentials found in a URL move out of it, so
        # the settings' repr, dumps and logs show clean URLs only.
        problems = []
        for name, schemes in (("rtsp_url", ("rtsp",)), ("snapshot_url", ("http",))):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                endpoint = parse_endpoint(value, schemes)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
            if endpoint.credentials is not None:
                self._url_credentials[name] = endpoint.credentials
                setattr(self, name, endpoint.url)
        if self.password is not None and self.username is None:
            problems.append("password given without username")
        if self.osd_region is not None:
            left, top, right, bottom = self.osd_region
            if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
                problems.append("osd_region: expected left < right and top < bottom, all between 0 and 1")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def credentials(self) -> Credentials | None:
        """The camera account: ``username``/``password``, else the one given in the RTSP URL."""
        if self.username is not None:
            secret = self.password.get_secret_value() if self.password else ""
            return Credentials(self.username, secret)
        return self._url_credentials.get("rtsp_url")

    def rtsp_endpoint(self) -> Endpoint:
        return parse_endpoint(self.rtsp_url, ("rtsp",), self.credentials())

    def snapshot_endpoint(self) -> Endpoint | None:
        """The snapshot URL with its own account if its URL had one, else the camera's."""
        if self.snapshot_url is None:
            return None
        creds = self._url_credentials.get("snapshot_url") if self.username is None else None
        return parse_endpoint(self.snapshot_url, ("http",), creds or self.credentials())


def _unique_ids(cameras: list[CameraSection]) -> list[CameraSection]:
    seen: set[str] = set()
    for cam in cameras:
        if cam.id in seen:
            raise ValueError(f"camera id {cam.id!r} appears more than once")
        seen.add(cam.id)
    return cameras


CameraList = Annotated[list[CameraSection], AfterValidator(_unique_ids), Field(max_length=32)]
"""The ``cameras`` field of the edge settings."""
