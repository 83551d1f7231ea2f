"""One check of one camera: the probes in order, then the picture analysis, summed up as an
:class:`Observation` (the state this single check points to, with its reason).

Order and severity: a camera whose RTSP service cannot be reached, refuses the
credentials or offers no video is ``down``; with RTSP fine, a picture whose brightest part
stays dark, or a uniform one, is ``black``; a picture unchanged over ``frozen_checks`` checks
(no more than ``frozen_change_pct`` of it changed clearly) is ``frozen``; a failing picture
probe or a slow answer is ``degraded``; otherwise ``ok``. The measures are in :mod:`.picture`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from thanthien.edge.cameras.config import CameraSection
from thanthien.edge.cameras.ffmpeg import decode_jpeg, grab_rtsp_frame
from thanthien.edge.cameras.picture import Thumbnail
from thanthien.edge.cameras.rtsp import probe_rtsp
from thanthien.edge.cameras.snapshot import fetch_snapshot
from thanthien.edge.cameras.wire import ProbeError
from thanthien.protocol.payloads import utc_now

CameraState = Literal["ok", "degraded", "down", "frozen", "black"]


@dataclass(frozen=True)
class Observation:
    state: CameraState
    reason: str
    at: datetime
    connect_ms: float | None = None
    brightness: float | None = None
    contrast: float | None = None
    peak: float | None = None
    """The brightest part of the picture (:attr:`.picture.Levels.peak`)."""
    changed_pct: float | None = None
    """How much of the picture (percent) changed: the most between the newest picture and an
    earlier one of the frozen window; ``None`` until the window is full."""


class CameraChecker:
    """Runs checks for one camera and remembers its last pictures (for ``frozen``)."""

    def __init__(self, config: CameraSection) -> None:
        self.config = config
        self.rtsp = config.rtsp_endpoint()
        self.snapshot = config.snapshot_endpoint()
        self._pictures: deque[Thumbnail] = deque(maxlen=config.frozen_checks)

    def check(self) -> Observation:
        cfg = self.config
        at = utc_now()
        try:
            rtsp = probe_rtsp(self.rtsp, cfg.connect_timeout_s, cfg.rtsp_timeout_s)
        except ProbeError as exc:
            self._pictures.clear()
            return Observation("down", exc.reason, at)
        slow = []
        if rtsp.connect_ms > cfg.slow_ms:
            slow.append(f"TCP connect took {rtsp.connect_ms:.0f} ms")
        if rtsp.slowest_ms > cfg.slow_ms:
            slow.append(f"RTSP {rtsp.slowest} answered in {rtsp.slowest_ms:.0f} ms")
        try:
            picture, picture_ms = self._picture()
        except ProbeError as exc:
            self._pictures.clear()
            return Observation("degraded", exc.reason, at, rtsp.connect_ms)
        if picture_ms is not None and picture_ms > cfg.slow_ms:
            slow.append(f"snapshot took {picture_ms:.0f} ms")
        self._pictures.append(picture)
        levels = picture.levels(cfg.osd_region)
        changed = self._change_pct()
        metrics = {"connect_ms": rtsp.connect_ms, "brightness": levels.brightness,
                   "contrast": levels.contrast, "peak": levels.peak, "changed_pct": changed}
        if levels.peak < cfg.black_brightness:
            return Observation("black", f"picture is black (brightest part {levels.peak:.0f} of 255, "
                                        f"limit {cfg.black_brightness:g})", at, **metrics)
        if levels.contrast < cfg.blank_contrast:
            return Observation("black", f"picture is blank (contrast {levels.contrast:.1f}, "
                                        f"limit {cfg.blank_contrast:g})", at, **metrics)
        if changed is not None and changed < cfg.frozen_change_pct:
            return Observation("frozen", f"picture unchanged over the last {len(self._pictures)} checks "
                                         f"(at most {changed:.4f} % of it changed, limit "
                                         f"{cfg.frozen_change_pct:g} %)", at, **metrics)
        if slow:
            return Observation("degraded", f"slow (limit {cfg.slow_ms:g} ms): " + "; ".join(slow), at,
                               **metrics)
        return Observation("ok", f"RTSP answers, {rtsp.video} video offered, picture changing", at, **metrics)

    @property
    def last_picture(self) -> Thumbnail | None:
        """The picture of the last check that got one (``None`` after a check that got none)."""
        return self._pictures[-1] if self._pictures else None

    def _picture(self) -> tuple[Thumbnail, float | None]:
        cfg = self.config
        if self.snapshot is not None:
            snap = fetch_snapshot(self.snapshot, cfg.connect_timeout_s, cfg.snapshot_timeout_s)
            return decode_jpeg(snap.jpeg, cfg.decode_timeout_s), snap.elapsed_ms
        return grab_rtsp_frame(self.rtsp, cfg.frame_timeout_s), None

    def _change_pct(self) -> float | None:
        """The most of the picture (percent) that changed between the newest picture and any
        earlier one in the window (frozen when even that is below the limit); ``None`` while the
        window is not full."""
        if len(self._pictures) < self.config.frozen_checks:
            return None
        newest = self._pictures[-1]
        return 100 * max(newest.changed_share(p) for p in list(self._pictures)[:-1])
