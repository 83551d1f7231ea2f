"""The HTTP snapshot probe: ``GET`` the camera's snapshot URL (ISAPI/CGI style), answering a
Basic or Digest challenge, and return the JPEG.

Written over :mod:`.wire` rather than ``urllib`` so the whole exchange, slow drips
included, is bounded by one deadline, and the same authentication code serves RTSP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from thanthien.edge.cameras.auth import AuthError, Authorizer, choose, parse_challenges
from thanthien.edge.cameras.rtsp import USER_AGENT
from thanthien.edge.cameras.urls import Endpoint
from thanthien.edge.cameras.wire import (
    Connection,
    Deadline,
    ProbeError,
    Response,
    describe_failure,
    open_tcp,
)

MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Snapshot:
    jpeg: bytes
    elapsed_ms: float
    """From the first connect to the last byte, authentication round included."""


def fetch_snapshot(endpoint: Endpoint, connect_timeout: float, timeout: float) -> Snapshot:
    """Fetch one picture; raise :class:`ProbeError` with the reason on any failure."""
    deadline = Deadline(timeout)
    started = time.monotonic()
    resp = _get(endpoint, connect_timeout, deadline, None)
    if resp.status == 401:
        if endpoint.credentials is None:
            raise ProbeError(f"snapshot: HTTP GET answered {resp.status_text} (no credentials configured)")
        try:
            challenge = choose(parse_challenges(resp.header_all("WWW-Authenticate")))
        except AuthError as exc:
            raise ProbeError(f"snapshot: {exc}") from None
        resp = _get(endpoint, connect_timeout, deadline, Authorizer(challenge, endpoint.credentials))
    if resp.status != 200:
        raise ProbeError(f"snapshot: HTTP GET answered {resp.status_text}")
    if not resp.body:
        raise ProbeError("snapshot: HTTP GET answered 200 with an empty body")
    return Snapshot(resp.body, (time.monotonic() - started) * 1000)


def _get(endpoint: Endpoint, connect_timeout: float, deadline: Deadline,
         authorizer: Authorizer | None) -> Response:
    try:
        sock, _ms = open_tcp(endpoint.host, endpoint.port,
                             min(connect_timeout, max(deadline.remaining(), 0.01)))
    except ProbeError as exc:
        raise ProbeError(f"snapshot: {exc.reason}") from None
    conn = Connection(sock)
    host = endpoint.host if endpoint.port == 80 else f"{endpoint.host}:{endpoint.port}"
    lines = [f"GET {endpoint.target} HTTP/1.1", f"Host: {host}", f"User-Agent: {USER_AGENT}",
             "Accept: image/jpeg", "Connection: close"]
    if authorizer is not None:
        lines.append("Authorization: " + authorizer.header("GET", endpoint.target))
    try:
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode(), deadline)
        return conn.read_response(deadline, MAX_SNAPSHOT_BYTES, until_close=True)
    except (OSError, ValueError) as exc:
        raise ProbeError(describe_failure("snapshot: HTTP GET", exc, deadline.seconds)) from None
    finally:
        conn.close()
