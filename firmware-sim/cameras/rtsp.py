"""The simulated camera's RTSP responder on a loopback port, answering according to the
camera's current :class:`Behaviour`: OPTIONS, DESCRIBE (with authentication), and SETUP/PLAY
with the picture streamed as RTP/JPEG interleaved on the RTSP connection (TCP transport
only), enough for ffmpeg to grab a frame."""

from __future__ import annotations

import logging
import secrets
import socketserver
from dataclasses import dataclass, field
from typing import BinaryIO

from thanthien.sim.cameras import rtp
from thanthien.sim.cameras.behaviour import Behaviour, Request

log = logging.getLogger(__name__)

MAX_LINE = 8192
STREAM_FPS = 10
SESSION = "5147A1F0"

SDP_VIDEO = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=Camera quầy một cửa (mô phỏng)
c=IN IP4 0.0.0.0
t=0 0
a=control:*
m=video 0 RTP/AVP 26
a=rtpmap:26 JPEG/90000
a=control:trackID=1
"""

SDP_AUDIO_ONLY = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=Camera quầy một cửa (mô phỏng)
c=IN IP4 0.0.0.0
t=0 0
a=control:*
m=audio 0 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=control:trackID=2
"""


@dataclass
class RtspRequest:
    method: str
    uri: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def read_request(rfile: BinaryIO) -> RtspRequest | None:
    """One request from a buffered reader, ``None`` at end of stream or on garbage."""
    line = rfile.readline(MAX_LINE)
    while line in (b"\r\n", b"\n"):
        line = rfile.readline(MAX_LINE)
    if not line:
        return None
    parts = line.decode("utf-8", "replace").split()
    if len(parts) != 3 or not parts[2].startswith("RTSP/"):
        return None
    req = RtspRequest(parts[0].upper(), parts[1])
    while True:
        hline = rfile.readline(MAX_LINE)
        if hline in (b"\r\n", b"\n", b""):
            break
        name, _, value = hline.decode("utf-8", "replace").partition(":")
        req.headers[name.strip().lower()] = value.strip()
    length = int(req.header("content-length") or 0)
    if length:
        req.body = rfile.read(length)
    return req


class RtspHandler(socketserver.StreamRequestHandler):
    server: RtspServer

    def handle(self) -> None:
        behaviour = self.server.behaviour
        while True:
            try:
                req = read_request(self.rfile)
            except (OSError, ValueError):
                return
            if req is None:
                return
            behaviour.record(Request("rtsp", req.method, req.header("authorization")))
            if not behaviour.before_answer():
                return
            status, headers, body = self.answer(req, behaviour)
            lines = [f"RTSP/1.0 {status}", f"CSeq: {req.header('cseq') or '0'}", "Server: ThanThien-SimCam"]
            lines += [f"{k}: {v}" for k, v in headers]
            if body:
                lines += ["Content-Length: " + str(len(body))]
            try:
                self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
                if req.method == "PLAY" and status.startswith("200"):
                    self.stream(behaviour)
                    return
                if status.startswith("401") and behaviour.hang_up_after_401:
                    return
            except OSError:
                return

    def stream(self, behaviour: Behaviour) -> None:
        """Send the picture as RTP/JPEG on interleaved channel 0 until the client leaves,
        the camera goes down or hangs, or the simulator closes."""
        seq, timestamp, ssrc = secrets.randbelow(1 << 16), secrets.randbelow(1 << 32), secrets.randbits(32)
        while behaviour.mode not in ("down", "hang"):
            frame = rtp.packets(behaviour.picture(), seq, timestamp, ssrc)
            self.wfile.write(b"".join(rtp.interleaved(0, pkt) for pkt in frame))
            seq += len(frame)
            timestamp += rtp.CLOCK_RATE // STREAM_FPS
            if behaviour.pause(1 / STREAM_FPS):
                return

    def answer(self, req: RtspRequest, behaviour: Behaviour) -> tuple[str, list[tuple[str, str]], bytes]:
        if req.method == "OPTIONS":
            return "200 OK", [("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN")], b""
        if req.method == "SETUP":
            transport = req.header("transport") or ""
            if "interleaved=" not in transport:
                return "461 Unsupported Transport", [], b""
            return "200 OK", [("Transport", transport), ("Session", f"{SESSION};timeout=60")], b""
        if req.method == "PLAY":
            return "200 OK", [("Session", SESSION), ("Range", "npt=0.000-")], b""
        if req.method == "TEARDOWN":
            return "200 OK", [("Session", SESSION)], b""
        if req.method != "DESCRIBE":
            return "501 Not Implemented", [], b""
        if req.uri.rstrip("/") != self.server.url.rstrip("/"):
            return "404 Not Found", [], b""
        refuse = behaviour.refuses_logins()
        if not behaviour.auth.accepts(req.header("authorization"), "DESCRIBE", req.uri, reject_all=refuse):
            return "401 Unauthorized", [("WWW-Authenticate", c) for c in behaviour.auth.challenges()], b""
        sdp = SDP_AUDIO_ONLY if behaviour.mode == "no_video" else SDP_VIDEO
        headers = [("Content-Type", "application/sdp"), ("Content-Base", req.uri.rstrip("/") + "/")]
        return "200 OK", headers, sdp.replace("\n", "\r\n").encode()


class RtspServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, behaviour: Behaviour, path: str) -> None:
        self.behaviour = behaviour
        super().__init__(("127.0.0.1", port), RtspHandler)
        self.url = f"rtsp://127.0.0.1:{self.server_address[1]}{path}"
