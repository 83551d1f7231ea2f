"""Request/response over a plain socket for RTSP/1.0 and HTTP/1.1, bounded by a deadline.

Both protocols share the message format (start line, headers, optional body). Every read
takes its timeout from one :class:`Deadline`, so a camera that drips bytes cannot stretch a
probe past its limit, and one that accepts and never answers is cut at the deadline.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024


class ProbeError(Exception):
    """A probe that failed; ``reason`` is one human-readable line (no credentials)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WireTimeout(TimeoutError):
    """The deadline passed before the peer answered."""


class WireClosed(ConnectionError):
    """The peer closed the connection before the message was complete."""


class WireProtocol(ValueError):
    """The peer's answer is not a well-formed RTSP/HTTP message."""


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


@dataclass(frozen=True)
class Response:
    version: str
    status: int
    phrase: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def status_text(self) -> str:
        return f"{self.status} {self.phrase}".strip()


def connect(host: str, port: int, timeout: float) -> tuple[socket.socket, float]:
    """Open a TCP connection; return it with the connect time in milliseconds."""
    started = time.monotonic()
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, (time.monotonic() - started) * 1000


class Connection:
    """A socket with a read buffer, reading whole messages before a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes, deadline: Deadline) -> None:
        self._set_timeout(deadline)
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise WireTimeout() from None

    def read_response(self, deadline: Deadline, max_body: int, until_close: bool = False) -> Response:
        head = self._read_head(deadline)
        lines = head.decode("iso-8859-1").split("\r\n")
        version, status, phrase = _status_line(lines[0])
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            if line[0] in " \t" and headers:  # obsolete line folding
                k, v = headers[-1]
                headers[-1] = (k, v + " " + line.strip())
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise WireProtocol(f"malformed header line {line[:40]!r}")
            headers.append((name.strip(), value.strip()))
        resp = Response(version, status, phrase, headers, b"")
        body = self._read_body(resp, deadline, max_body, until_close)
        return Response(version, status, phrase, headers, body)

    def _read_head(self, deadline: Deadline) -> bytes:
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self._buf[:end])
                del self._buf[:end + 4]
                return head
            if len(self._buf) > MAX_HEADER_BYTES:
                raise WireProtocol("header larger than 64 KiB")
            if not self._fill(deadline):
                if self._buf:
                    raise WireClosed("connection closed in the middle of an answer")
                raise WireClosed("connection closed without an answer")

    def _read_body(self, resp: Response, deadline: Deadline, max_body: int, until_close: bool) -> bytes:
        length = resp.header("Content-Length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                raise WireProtocol(f"bad Content-Length {length[:20]!r}") from None
            if n < 0 or n > max_body:
                raise WireProtocol(f"body of {n} bytes exceeds the limit of {max_body}")
            return self._read_exact(n, deadline)
        if (resp.header("Transfer-Encoding") or "").lower() == "chunked":
            return self._read_chunked(deadline, max_body)
        if until_close:
            while self._fill(deadline):
                if len(self._buf) > max_body:
                    raise WireProtocol(f"body exceeds the limit of {max_body} bytes")
            body = bytes(self._buf)
            self._buf.clear()
            return body
        return b""

    def _read_exact(self, n: int, deadline: Deadline) -> bytes:
        while len(self._buf) < n:
            if not self._fill(deadline):
                raise WireClosed(f"connection closed after {len(self._buf)} of {n} body bytes")
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _read_line(self, deadline: Deadline) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            if len(self._buf) > MAX_HEADER_BYTES or not self._fill(deadline):
                raise WireProtocol("broken chunked encoding")
        line = bytes(self._buf[:end])
        del self._buf[:end + 2]
        return line

    def _read_chunked(self, deadline: Deadline, max_body: int) -> bytes:
        out = bytearray()
        while True:
            size_text = self._read_line(deadline).split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise WireProtocol("broken chunked encoding") from None
            if size == 0:
                while self._read_line(deadline):  # trailers
                    pass
                return bytes(out)
            if len(out) + size > max_body:
                raise WireProtocol(f"body exceeds the limit of {max_body} bytes")
            out += self._read_exact(size, deadline)
            self._read_line(deadline)

    def _fill(self, deadline: Deadline) -> bool:
        self._set_timeout(deadline)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise WireTimeout() from None
        if not chunk:
            return False
        self._buf += chunk
        return True

    def _set_timeout(self, deadline: Deadline) -> None:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise WireTimeout()
        self.sock.settimeout(remaining)


def _status_line(line: str) -> tuple[str, int, str]:
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith(("RTSP/", "HTTP/")) or not parts[1].isdigit():
        raise WireProtocol(f"not an RTSP/HTTP status line: {line[:60]!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


def open_tcp(host: str, port: int, timeout: float) -> tuple[socket.socket, float]:
    """:func:`connect`, with failures turned into a :class:`ProbeError` reason."""
    where = f"{host}:{port}"
    try:
        return connect(host, port, timeout)
    except ConnectionRefusedError:
        raise ProbeError(f"TCP connect to {where} refused") from None
    except TimeoutError:
        raise ProbeError(f"TCP connect to {where}: no answer within {timeout:g} s") from None
    except socket.gaierror as exc:
        raise ProbeError(f"cannot resolve {host}: {exc.strerror}") from None
    except OSError as exc:
        raise ProbeError(f"TCP connect to {where} failed: {exc.strerror or exc}") from None


def describe_failure(what: str, exc: Exception, timeout: float) -> str:
    """One line for a failed exchange (``what`` is e.g. ``RTSP DESCRIBE``)."""
    if isinstance(exc, WireTimeout):
        return f"{what}: no answer within {timeout:g} s"
    if isinstance(exc, WireClosed | WireProtocol):
        return f"{what}: {exc}"
    if isinstance(exc, OSError):
        return f"{what}: connection error: {exc.strerror or exc}"
    return f"{what}: {exc}"
