"""Oversized request bodies are refused before they are read, over a real socket."""

from __future__ import annotations

import select
import socket

import pytest
import uvicorn

from support import wait_until
from thanthien.broker import free_port
from thanthien.hub.app import create_app

GIGABYTE = 1024 ** 3


@pytest.fixture
def limit_bytes() -> int | None:
    return None


@pytest.fixture
def server(ctx, limit_bytes):
    import threading

    if limit_bytes is not None:
        ctx.settings.media.max_bytes = limit_bytes
    port = free_port()
    app = create_app(ctx.settings, ctx.db, ctx=ctx)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                        access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    assert wait_until(lambda: srv.started, timeout=10)
    yield port
    srv.should_exit = True
    thread.join(10)


def _raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send in pieces and stop sending once the server has answered (it may close on us)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        for start in range(0, len(body), 65536):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(body[start:start + 65536])
            except (BrokenPipeError, ConnectionResetError):
                break
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def test_a_declared_gigabyte_body_is_refused_at_once(server):
    head = (f"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {GIGABYTE}\r\n\r\n").encode()
    answer = _raw_request(server, head, b"username=a")  # the rest never comes
    assert answer.startswith(b"HTTP/1.1 413")
    assert "quá lớn".encode() in answer


@pytest.mark.parametrize("limit_bytes", [1024])  # the cap: 1 KiB + the multipart envelope
def test_a_chunked_body_over_the_limit_is_cut_off(server):
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40)) + b"0\r\n\r\n"
    head = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
    assert _raw_request(server, head, body).startswith(b"HTTP/1.1 413")


def test_a_normal_request_passes(server):
    head = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 21\r\n\r\n")
    answer = _raw_request(server, head, b"username=a&password=b")
    assert answer.startswith(b"HTTP/1.1 401")  # read and judged: wrong password
