"""The RTSP probe: OPTIONS and DESCRIBE on one connection, authenticating on a 401, and a
check that the session description offers a video stream (RFC 2326, RFC 4566)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from thanthien.edge.cameras.auth import AuthError, Authorizer, choose, parse_challenges
from thanthien.edge.cameras.urls import Endpoint
from thanthien.edge.cameras.wire import (
    Connection,
    Deadline,
    ProbeError,
    Response,
    WireClosed,
    describe_failure,
    open_tcp,
)

USER_AGENT = "thanthien-edge camera probe"
MAX_SDP_BYTES = 64 * 1024
STATIC_VIDEO_TYPES = {"26": "JPEG", "31": "H261", "32": "MPV", "34": "H263"}


@dataclass(frozen=True)
class RtspResult:
    connect_ms: float
    slowest_ms: float
    """The longest any single answer took (OPTIONS or DESCRIBE)."""
    slowest: str
    video: str
    """The offered video encoding, e.g. ``H264``."""


def probe_rtsp(endpoint: Endpoint, connect_timeout: float, timeout: float) -> RtspResult:
    """Run the exchange; raise :class:`ProbeError` with the reason on any failure."""
    session = _Session(endpoint, connect_timeout, Deadline(timeout))
    try:
        session.request("OPTIONS")
        answer = session.request("DESCRIBE", {"Accept": "application/sdp"})
    finally:
        session.close()
    video = video_encoding(answer.body.decode("utf-8", "replace"))
    if video is None:
        raise ProbeError("RTSP DESCRIBE: the SDP offers no video stream")
    return RtspResult(session.connect_ms, session.slowest_ms, session.slowest, video)


def video_encoding(sdp: str) -> str | None:
    """The encoding of the first video media line, ``"?"`` if unnamed, ``None`` if none."""
    media: list[tuple[str, list[str]]] = []
    rtpmap: dict[str, str] = {}
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            fields = line[2:].split()
            if len(fields) >= 4:
                media.append((fields[0].lower(), fields[3:]))
        elif line.startswith("a=rtpmap:") and media and media[-1][0] == "video":
            pt, _, enc = line[len("a=rtpmap:"):].partition(" ")
            rtpmap.setdefault(pt, enc.split("/")[0])
    for kind, formats in media:
        if kind == "video":
            first = formats[0]
            return rtpmap.get(first) or STATIC_VIDEO_TYPES.get(first, "?")
    return None


class _Session:
    def __init__(self, endpoint: Endpoint, connect_timeout: float, deadline: Deadline) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.deadline = deadline
        self.cseq = 0
        self.slowest_ms = 0.0
        self.slowest = ""
        self.authorizer: Authorizer | None = None
        sock, self.connect_ms = open_tcp(endpoint.host, endpoint.port, connect_timeout)
        self.conn = Connection(sock)

    def close(self) -> None:
        self.conn.close()

    def request(self, method: str, extra: dict[str, str] | None = None) -> Response:
        what = f"RTSP {method}"
        resp = self._send(method, extra or {})
        if resp.status == 401 and self.authorizer is None:
            creds = self.endpoint.credentials
            if creds is None:
                raise ProbeError(f"{what} answered {resp.status_text} (no credentials configured)")
            try:
                self.authorizer = Authorizer(choose(parse_challenges(resp.header_all("WWW-Authenticate"))),
                                             creds)
            except AuthError as exc:
                raise ProbeError(f"{what}: {exc}") from None
            if (resp.header("Connection") or "").lower() == "close":
                self._reconnect()
            # some cameras hang up after a 401 without saying so: then reconnect once
            resp = self._send(method, extra or {}, reconnect_if_closed=True)
        if resp.status != 200:
            raise ProbeError(f"{what} answered {resp.status_text}")
        return resp

    def _reconnect(self) -> None:
        self.conn.close()
        sock, _ms = open_tcp(self.endpoint.host, self.endpoint.port, self.connect_timeout)
        self.conn = Connection(sock)

    def _send(self, method: str, extra: dict[str, str], reconnect_if_closed: bool = False) -> Response:
        self.cseq += 1
        lines = [f"{method} {self.endpoint.url} RTSP/1.0", f"CSeq: {self.cseq}", f"User-Agent: {USER_AGENT}"]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        if self.authorizer is not None:
            lines.append("Authorization: " + self.authorizer.header(method, self.endpoint.url))
        started = time.monotonic()
        try:
            self.conn.send(("\r\n".join(lines) + "\r\n\r\n").encode(), self.deadline)
            resp = self.conn.read_response(self.deadline, MAX_SDP_BYTES)
        except (WireClosed, BrokenPipeError, ConnectionResetError) as exc:
            if reconnect_if_closed:
                self._reconnect()
                return self._send(method, extra)
            raise ProbeError(describe_failure(f"RTSP {method}", exc, self.deadline.seconds)) from None
        except (OSError, ValueError) as exc:
            raise ProbeError(describe_failure(f"RTSP {method}", exc, self.deadline.seconds)) from None
        elapsed = (time.monotonic() - started) * 1000
        if elapsed > self.slowest_ms:
            self.slowest_ms, self.slowest = elapsed, method
        if not resp.version.startswith("RTSP/"):
            raise ProbeError(f"RTSP {method}: the server answered {resp.version}, not RTSP")
        cseq = resp.header("CSeq")
        if cseq is not None and cseq.strip() != str(self.cseq):
            raise ProbeError(f"RTSP {method}: answer has CSeq {cseq.strip()[:12]}, expected {self.cseq}")
        return resp
