"""The systemd notify protocol against a real unix datagram socket."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from thanthien.sdnotify import Watchdog, notify, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path: Path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


def test_notify_sends_the_message(notify_socket):
    path, sock = notify_socket
    assert notify("READY=1", path)
    assert sock.recv(100) == b"READY=1"


def test_notify_without_systemd_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 15.0


def test_watchdog_feeds_while_healthy(notify_socket):
    path, sock = notify_socket
    dog = Watchdog(lambda: True, interval=0.01, socket_path=path)
    dog.start()
    try:
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        dog.close()


def test_watchdog_starves_when_unhealthy(notify_socket):
    path, sock = notify_socket
    sock.settimeout(0.3)
    dog = Watchdog(lambda: False, interval=0.01, socket_path=path)
    dog.start()
    try:
        with pytest.raises(TimeoutError):
            sock.recv(100)
    finally:
        dog.close()
