"""A simulated IP camera on loopback: an RTSP responder and an HTTP snapshot server that
share one :class:`Behaviour`, switchable at run time with :meth:`SimCamera.set_mode`.

``down`` closes both listening ports, so connections are refused as with a camera that
is off; leaving ``down`` opens them again on the same port numbers.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Callable

from thanthien.sim.cameras.auth import AuthPolicy
from thanthien.sim.cameras.behaviour import Behaviour, Mode, Request
from thanthien.sim.cameras.rtsp import RtspServer
from thanthien.sim.cameras.snapshot import SnapshotServer

log = logging.getLogger(__name__)

RTSP_PATH = "/Streaming/Channels/101"
SNAPSHOT_PATH = "/ISAPI/Streaming/channels/101/picture"


class _Listener:
    """One server on a fixed port that can be closed and opened again."""

    def __init__(self, make: Callable[[int], socketserver.TCPServer], port: int = 0) -> None:
        self._make = make
        self.port = port
        self.url = ""
        self._server: socketserver.TCPServer | None = None
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        if self._server is not None:
            return
        server = self._make(self.port)
        self.port = server.server_address[1]
        self.url = server.url  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"simcam-{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(2.0)


class SimCamera:
    def __init__(self, auth: AuthPolicy | None = None, slow_delay_s: float = 0.5,
                 hang_up_after_401: bool = False, rtsp_port: int = 0, http_port: int = 0) -> None:
        """Ports 0 (the default) pick free ones; fixed ports suit a demo's config file."""
        self.auth = auth or AuthPolicy()
        self.behaviour = Behaviour(self.auth, slow_delay_s, hang_up_after_401)
        self._rtsp = _Listener(lambda port: RtspServer(port, self.behaviour, RTSP_PATH), rtsp_port)
        self._http = _Listener(lambda port: SnapshotServer(port, self.behaviour, SNAPSHOT_PATH), http_port)
        self._lock = threading.Lock()

    def start(self) -> SimCamera:
        self._rtsp.open()
        self._http.open()
        log.info("simulated camera: %s and %s", self.rtsp_url, self.snapshot_url)
        return self

    def close(self) -> None:
        self.behaviour.close()
        self._rtsp.close()
        self._http.close()

    def __enter__(self) -> SimCamera:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def rtsp_url(self) -> str:
        return self._rtsp.url

    @property
    def snapshot_url(self) -> str:
        return self._http.url

    @property
    def rtsp_port(self) -> int:
        return self._rtsp.port

    @property
    def mode(self) -> Mode:
        return self.behaviour.mode

    @property
    def requests(self) -> list[Request]:
        return self.behaviour.seen()

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            self.behaviour.set_mode(mode)
            if mode == "down":
                self._rtsp.close()
                self._http.close()
            else:
                self._rtsp.open()
                self._http.open()
        log.info("simulated camera %s: mode %s", self.rtsp_port, mode)
