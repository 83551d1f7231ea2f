"""A cap on request bodies, enforced before the application reads them.

A declared ``Content-Length`` over the cap is answered 413 at once, without reading a byte
of the body; a chunked body is counted as it streams and cut off at the cap. Uploads are
the largest legitimate bodies, so the cap is the media limit plus room for the multipart
envelope.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENVELOPE_BYTES = 1024 * 1024


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            # Past the cap: answer 413 ourselves and tell the app the client has gone, so it
            # stops reading (raising here would be turned into a 400 by form parsing).
            nonlocal seen, started, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        started = True
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; the app's own answer is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        mb = self.max_bytes // (1024 * 1024)
        body = json.dumps({"detail": f"Dữ liệu gửi lên quá lớn (tối đa {mb} MB)."},
                          ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    headers: list[Any] = scope.get("headers", [])
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
