"""Pictures through ffmpeg: decode a JPEG, or grab one frame from an RTSP stream, straight
to a small grey :class:`~.picture.Thumbnail`.

ffmpeg rather than Pillow: the RTSP grab needs ffmpeg anyway (no Python RTSP/RTP/H.264
stack is worth carrying on a Pi), so one decoder serves both paths, handles every format a
camera may send, and adds no wheel to the edge install. Each call is a separate process
under a hard timeout, so a stuck decoder or a stream that never delivers a frame is killed
and cannot hold the probe thread.
"""

from __future__ import annotations

import shutil
import subprocess

from thanthien.edge.cameras.picture import THUMB_HEIGHT, THUMB_WIDTH, Thumbnail
from thanthien.edge.cameras.urls import Endpoint, scrub, with_credentials
from thanthien.edge.cameras.wire import ProbeError

GRAB_PROBE_BYTES = 32 * 1024
GRAB_PROBE_US = 100_000
"""Stream probing before the first frame is decoded. ffmpeg's default (5 MB / 5 s) makes a
grab take seconds; the decoder takes the picture's parameters from the frames anyway. Both
limits matter: a dark H.264 stream sends so few bytes that 32 KB alone takes 3 s to fill
(gst-rtsp-server, x264 at 10 frames/s), 0.1 s of stream is enough for every test scene."""
_SCALE = f"scale={THUMB_WIDTH}:{THUMB_HEIGHT},format=gray"
_OUTPUT = ["-frames:v", "1", "-vf", _SCALE, "-f", "rawvideo", "pipe:1"]


def ffmpeg_path() -> str:
    return shutil.which("ffmpeg") or "/usr/bin/ffmpeg"


def decode_jpeg(jpeg: bytes, timeout: float) -> Thumbnail:
    """Decode one picture (JPEG or any image ffmpeg reads) to a grey thumbnail."""
    args = [ffmpeg_path(), "-nostdin", "-hide_banner", "-v", "error", "-f", "image2pipe", "-i", "pipe:0",
            *_OUTPUT]
    return _run("snapshot: decoding the picture", args, jpeg, timeout, None)


def grab_rtsp_frame(endpoint: Endpoint, timeout: float) -> Thumbnail:
    """Read the stream until its first decodable frame (RTP interleaved on the RTSP
    connection: TCP passes firewalls and NAT that would drop the UDP ports).

    ffmpeg takes the credentials inside the URL (it answers Basic and Digest itself); they
    are visible in the process list for the length of the grab, and are scrubbed from any
    error text before it becomes a reason. ffmpeg's own socket timeout is set too, so a
    grab left behind by an agent that exits still ends by itself."""
    args = [ffmpeg_path(), "-nostdin", "-hide_banner", "-v", "error", "-rtsp_transport", "tcp",
            "-probesize", str(GRAB_PROBE_BYTES), "-analyzeduration", str(GRAB_PROBE_US),
            "-timeout", str(int((timeout + 1) * 1_000_000)), "-i", with_credentials(endpoint), *_OUTPUT]
    return _run("RTSP frame grab", args, None, timeout, endpoint)


def encode_jpeg(picture: Thumbnail, timeout: float = 5.0, quality: int = 8) -> bytes:
    """The grey thumbnail as a small JPEG (a few KiB), for IT to look at; raises
    :class:`ProbeError` when ffmpeg cannot."""
    args = [ffmpeg_path(), "-nostdin", "-hide_banner", "-v", "error", "-f", "rawvideo", "-pix_fmt", "gray",
            "-s", f"{picture.width}x{picture.height}", "-i", "pipe:0", "-frames:v", "1", "-q:v", str(quality),
            "-f", "mjpeg", "pipe:1"]
    try:
        done = subprocess.run(args, input=picture.pixels, capture_output=True, timeout=timeout, check=False)
    except (subprocess.TimeoutExpired, FileNotFoundError) as exc:
        raise ProbeError(f"encoding the thumbnail: {type(exc).__name__}") from None
    if done.returncode != 0 or not done.stdout.startswith(b"\xff\xd8"):
        raise ProbeError("encoding the thumbnail: ffmpeg failed")
    return done.stdout


def _run(what: str, args: list[str], data: bytes | None, timeout: float,
         endpoint: Endpoint | None) -> Thumbnail:
    try:
        done = subprocess.run(args, input=data, capture_output=True, timeout=timeout, check=False,
                              stdin=None if data is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"{what}: no picture within {timeout:g} s") from None
    except FileNotFoundError:
        raise ProbeError(f"{what}: ffmpeg is not installed") from None
    expected = THUMB_WIDTH * THUMB_HEIGHT
    if done.returncode != 0 or len(done.stdout) != expected:
        detail = _last_line(done.stderr.decode("utf-8", "replace"), endpoint)
        raise ProbeError(f"{what}: ffmpeg failed" + (f" ({detail})" if detail else ""))
    return Thumbnail(THUMB_WIDTH, THUMB_HEIGHT, done.stdout)


def _last_line(stderr: str, endpoint: Endpoint | None) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return ""
    text = lines[-1]
    if endpoint is not None:
        text = scrub(text.replace(with_credentials(endpoint), endpoint.url), endpoint.credentials)
    return text[:200]
