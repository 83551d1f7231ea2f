"""A TCP proxy on loopback that can cut a node off its broker, for fault drills.

Modes, switchable at run time:
- ``pass``: bytes flow both ways.
- ``reset``: every open connection is closed and new ones are refused at once (a router
  reboot: the client notices immediately).
- ``blackhole``: connections stay open but every byte is dropped (a dead 3G link: the
  client notices only by its keepalive, and the broker fires the Last Will after 1.5×
  the keepalive).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from typing import Literal

log = logging.getLogger(__name__)

Mode = Literal["pass", "reset", "blackhole"]


class NetCut:
    """Listens on ``listen_port`` (0: a free one) and forwards to ``target``."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1",
                 listen_host: str = "127.0.0.1", listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._server = socket.create_server((listen_host, listen_port))
        self._server.setblocking(False)
        self.port: int = self._server.getsockname()[1]
        self._mode: Mode = "pass"
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        log.info("netcut :%d -> %s", self.port, mode)
        with self._lock:
            self._mode = mode
        self._wake_w.send(b"x")

    def start(self) -> NetCut:
        self._selector.register(self._server, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name=f"netcut-{self.port}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._mode == "reset":
                self._close_all()
            for key, _events in self._selector.select(timeout=0.5):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    self._wake_r.recv(64)
                else:
                    self._forward(key.fileobj)  # type: ignore[arg-type]
        self._close_all()

    def _accept(self) -> None:
        try:
            client, _addr = self._server.accept()
        except BlockingIOError:
            return
        if self._mode == "reset":
            client.close()
            return
        try:
            upstream = socket.create_connection(self.target, timeout=2)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setblocking(False)
        with self._lock:
            self._peers[client] = upstream
            self._peers[upstream] = client
        self._selector.register(client, selectors.EVENT_READ, "data")
        self._selector.register(upstream, selectors.EVENT_READ, "data")

    def _forward(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_pair(sock)
            return
        if self._mode == "blackhole":
            return
        peer = self._peers.get(sock)
        if peer is None:
            return
        try:
            peer.setblocking(True)
            peer.sendall(data)
            peer.setblocking(False)
        except OSError:
            self._close_pair(sock)

    def _close_pair(self, sock: socket.socket) -> None:
        with self._lock:
            peer = self._peers.pop(sock, None)
            if peer is not None:
                self._peers.pop(peer, None)
        for s in (sock, peer):
            if s is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(s)
            s.close()

    def _close_all(self) -> None:
        with self._lock:
            socks = list(self._peers)
        for s in socks:
            self._close_pair(s)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._peers) // 2

    def close(self) -> None:
        """Stop forwarding and close every socket. Safe twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server.close()
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()

    def __enter__(self) -> NetCut:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
