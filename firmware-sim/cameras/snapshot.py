"""The simulated camera's HTTP snapshot endpoint (ISAPI style path), with authentication."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from thanthien.sim.cameras.behaviour import Behaviour, Request

log = logging.getLogger(__name__)


class SnapshotHandler(BaseHTTPRequestHandler):
    server: SnapshotServer
    server_version = "ThanThien-SimCam"

    def do_GET(self) -> None:
        behaviour = self.server.behaviour
        behaviour.record(Request("http", "GET", self.headers.get("Authorization")))
        if not behaviour.before_answer():
            self.close_connection = True
            return
        if self.path != self.server.path:
            self.send_error(404)
            return
        refuse = behaviour.refuses_logins()
        if not behaviour.auth.accepts(self.headers.get("Authorization"), "GET", self.path, reject_all=refuse):
            self.send_response(401)
            for challenge in behaviour.auth.challenges():
                self.send_header("WWW-Authenticate", challenge)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if behaviour.mode == "snapshot_error":
            self.send_error(500, "Internal Server Error")
            return
        jpeg = behaviour.picture()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(jpeg)))
        self.end_headers()
        self.wfile.write(jpeg)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("snapshot %s: " + format, self.address_string(), *args)


class SnapshotServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, behaviour: Behaviour, path: str) -> None:
        self.behaviour = behaviour
        self.path = path
        super().__init__(("127.0.0.1", port), SnapshotHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}{path}"
