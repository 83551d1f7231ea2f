"""A small WebSocket client for the live announcement socket (``/ui/live/ws``), on wsproto (the
sans-IO WebSocket library uvicorn itself uses): the latency benchmark and the end-to-end tests
speak to the hub through it as the browser does."""

from __future__ import annotations

import json
import socket
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)


class LiveSocketClosed(ConnectionError):
    pass


class LiveSocket:
    def __init__(self, host: str, port: int, *, cookie: str, path: str = "/ui/live/ws",
                 timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._inbox: list[Any] = []
        self._text: list[str] = []
        self.closed = False
        self._send(Request(host=f"{host}:{port}", target=path,
                           extra_headers=[(b"cookie", cookie.encode()),
                                          (b"origin", f"http://{host}:{port}".encode())]))
        while True:
            event = self._next()
            if isinstance(event, AcceptConnection):
                return
            if isinstance(event, RejectConnection | CloseConnection):
                raise LiveSocketClosed(f"refused: {event}")

    def _send(self, event: Any) -> None:
        self.sock.sendall(self.ws.send(event))

    def _next(self) -> Any:
        while not self._inbox:
            data = self.sock.recv(65536)
            if not data:
                raise LiveSocketClosed("connection closed")
            self.ws.receive_data(data)
            self._inbox.extend(self.ws.events())
        return self._inbox.pop(0)

    def send_json(self, value: dict[str, Any]) -> None:
        self._send(TextMessage(data=json.dumps(value)))

    def send_bytes(self, data: bytes) -> None:
        self._send(BytesMessage(data=data))

    def recv_json(self) -> dict[str, Any]:
        buf = ""
        while True:
            event = self._next()
            if isinstance(event, TextMessage):
                buf += event.data
                if event.message_finished:
                    return json.loads(buf)  # type: ignore[no-any-return]
            elif isinstance(event, CloseConnection):
                self.closed = True
                raise LiveSocketClosed(f"closed: {event.code} {event.reason}")

    def close(self) -> None:
        try:
            if not self.closed:
                self._send(CloseConnection(code=1000))
        except OSError:
            pass
        self.sock.close()
