"""An SMPP 3.4 account of a telco brand name (smpplib, bind transceiver).

The brand name goes as the alphanumeric sender (TON 5). A long message goes in parts with a
UDH (smpplib.gsm.make_parts); only the last part asks for a delivery report, and its
message id is the reference. A message counts as accepted when every part's ``submit_sm_resp``
said so; a connection lost before that, or an SMSC that is busy (throttled, queue full),
leaves it for a retry; any other refusal is final. Texts (MO) and delivery reports come as
``deliver_sm``: each is passed to the hub's handler and answered with ``deliver_sm_resp`` only
after the handler returned, so an SMSC resends what a dying hub never stored.
"""

from __future__ import annotations

import contextlib
import logging
import re
import select
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm
import smpplib.smpp

from thanthien.hub.notify.gateway import (
    Accepted,
    CannotTell,
    Event,
    GatewayError,
    Handler,
    Outgoing,
    Received,
    Report,
    ReportStatus,
)
from thanthien.hub.notify.settings import SmppSettings

log = logging.getLogger(__name__)

RETRY_STATUSES = {0x14, 0x58, 0x08, 0x64}  # message queue full, throttled, system error, temporary app error
DLR_STATES: dict[str, ReportStatus] = {
    "DELIVRD": "delivered",
    "ACCEPTD": "sent",
    "ENROUTE": "sent",
    "EXPIRED": "undelivered",
    "DELETED": "undelivered",
    "UNDELIV": "undelivered",
    "REJECTD": "undelivered",
    "UNKNOWN": "undelivered",
}
MESSAGE_STATES: dict[int, ReportStatus] = {
    1: "sent",
    2: "delivered",
    3: "undelivered",
    4: "undelivered",
    5: "undelivered",
    6: "sent",
    8: "undelivered",
}
DLR_ID = re.compile(rb"id:(\S+)")
DLR_STAT = re.compile(rb"stat:(\w+)")


class _Client(smpplib.client.Client):  # type: ignore[misc]
    """smpplib's client, answering a deliver_sm only after the hub's handler returned."""

    on_deliver: Callable[[Any], None] = staticmethod(lambda _pdu: None)

    def _message_received(self, pdu: Any) -> None:
        try:
            self.on_deliver(pdu)
            status = smpplib.consts.SMPP_ESME_ROK
        except Exception:
            log.exception("SMPP deliver_sm not stored; the SMSC will send it again")
            status = 0x64  # ESME_RX_T_APPN: temporary, resend later
        resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=self, status=status)
        resp.sequence = pdu.sequence
        self.send_pdu(resp)


def _text_of(pdu: Any) -> str:
    raw = pdu.short_message or b""
    if pdu.data_coding == 8:
        return raw.decode("utf-16-be", "replace")
    return raw.decode("latin-1")


def _parse_dlr(pdu: Any, now: datetime) -> Report | None:
    raw = pdu.short_message or b""
    ref = pdu.receipted_message_id
    ref = ref.decode() if isinstance(ref, bytes) else ref
    if not ref:
        m = DLR_ID.search(raw)
        ref = m.group(1).decode() if m else None
    if not ref:
        return None
    state = getattr(pdu, "message_state", None)
    if state in MESSAGE_STATES:
        status = MESSAGE_STATES[state]
    else:
        m = DLR_STAT.search(raw)
        status = DLR_STATES.get(m.group(1).decode().upper(), "undelivered") if m else "undelivered"
    return Report(ref=ref, status=status, at=now, raw=raw.decode("latin-1")[:500])


class SmppGateway:
    name = "smpp"
    carries_brand = True

    def __init__(self, cfg: SmppSettings, *, brand: str, handle: Handler) -> None:
        self.cfg = cfg
        self.brand = brand
        self.handle = handle
        self._client: _Client | None = None
        self._lock = threading.RLock()
        self._responses: dict[int, Any] = {}
        self._last_io = 0.0

    # -- the bind --------------------------------------------------------------------------
    def _on_deliver(self, pdu: Any) -> None:
        now = datetime.now(UTC)
        event: Event | None
        if pdu.esm_class & 0x04:  # a delivery receipt
            event = _parse_dlr(pdu, now)
        else:
            event = Received(
                ref=f"mo-{uuid.uuid4().hex}",
                sender=(pdu.source_addr or b"").decode(),
                text=_text_of(pdu),
                at=now,
            )
        if event is not None:
            self.handle(event)

    def _bound(self) -> _Client:
        if self._client is not None:
            return self._client
        client = _Client(
            self.cfg.host, self.cfg.port, timeout=self.cfg.timeout_s, allow_unknown_opt_params=True
        )
        client.on_deliver = self._on_deliver
        client.set_message_sent_handler(lambda pdu: self._responses.__setitem__(pdu.sequence, pdu))
        client.set_error_pdu_handler(lambda pdu: self._responses.__setitem__(pdu.sequence, pdu))
        try:
            client.connect()
            client.bind_transceiver(
                system_id=self.cfg.system_id,
                password=self.cfg.password.get_secret_value(),
                system_type=self.cfg.system_type,
            )
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
            self._drop(client)
            raise GatewayError(
                f"SMSC {self.cfg.host}:{self.cfg.port} unavailable: {exc!r}", retry=True
            ) from exc
        log.info("SMPP bound to %s:%d as %s", self.cfg.host, self.cfg.port, self.cfg.system_id)
        self._client = client
        self._last_io = time.monotonic()
        return client

    @staticmethod
    def _drop(client: _Client | None) -> None:
        if client is None:
            return
        try:
            if client._socket is not None:
                client._socket.close()
        except OSError:
            pass
        client._socket = None
        client.state = smpplib.consts.SMPP_CLIENT_STATE_CLOSED

    def _lost(self, exc: BaseException, *, maybe_sent: bool = False) -> GatewayError:
        self._drop(self._client)
        self._client = None
        return GatewayError(f"SMPP connection lost: {exc!r}", retry=True, maybe_sent=maybe_sent)

    def _read_available(self, client: _Client, wait_s: float) -> None:
        sock = client._socket
        if sock is None:
            raise smpplib.exceptions.ConnectionError("no socket")
        readable, _w, _x = select.select([sock], [], [], wait_s)
        if readable:
            client.read_once(auto_send_enquire_link=False)
            self._last_io = time.monotonic()

    # -- the seam --------------------------------------------------------------------------
    def _alive(self, client: _Client) -> None:
        """Read what is waiting without waiting: an SMSC that closed the link since (its FIN is
        there) shows now, before a message leaves into a dead socket, so the message is tried
        again later instead of ending ``unknown``."""
        try:
            while True:
                sock = client._socket
                if sock is None or not select.select([sock], [], [], 0)[0]:
                    return
                self._read_available(client, 0)
        except (TimeoutError, smpplib.exceptions.ConnectionError, OSError) as exc:
            raise self._lost(exc) from exc

    def submit(self, msg: Outgoing) -> Accepted:
        with self._lock:
            client = self._bound()
            self._alive(client)
            encoding = (
                smpplib.consts.SMPP_ENCODING_ISO10646
                if msg.encoding == "ucs2"
                else smpplib.consts.SMPP_ENCODING_DEFAULT
            )
            parts, coding, esm_class = smpplib.gsm.make_parts(msg.body, encoding=encoding)
            sequences = []
            try:
                for i, part in enumerate(parts):
                    pdu = client.send_message(
                        source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                        source_addr_npi=smpplib.consts.SMPP_NPI_UNK,
                        source_addr=self.brand,
                        dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                        dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                        destination_addr=msg.phone.lstrip("+"),
                        short_message=part,
                        data_coding=coding,
                        esm_class=esm_class,
                        registered_delivery=1 if i == len(parts) - 1 else 0,
                        priority_flag=1 if msg.urgent else 0,
                    )
                    sequences.append(pdu.sequence)
                deadline = time.monotonic() + self.cfg.timeout_s
                while not all(s in self._responses for s in sequences):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise self._lost(TimeoutError("no submit_sm_resp"), maybe_sent=True)
                    self._read_available(client, min(left, 0.5))
            except (TimeoutError, smpplib.exceptions.ConnectionError, OSError) as exc:
                # a part written (its sequence kept) may be stored at the SMSC without an answer
                raise self._lost(exc, maybe_sent=bool(sequences)) from exc
            resps = [self._responses.pop(s) for s in sequences]
        refused = [r for r in resps if r.status != smpplib.consts.SMPP_ESME_ROK]
        if refused:
            status = int(refused[0].status)
            text = smpplib.consts.DESCRIPTIONS.get(status, "unknown")
            raise GatewayError(f"SMSC refused (0x{status:02x} {text})", retry=status in RETRY_STATUSES)
        ref = resps[-1].message_id
        return Accepted(ref=ref.decode() if isinstance(ref, bytes) else str(ref), state="sent")

    def find(self, msg_id: int) -> Accepted | None:
        raise CannotTell("an SMSC cannot be asked by the hub's message id")

    def track(self, refs: list[str]) -> list[Report]:
        return []  # delivery reports come as deliver_sm (receive)

    def receive(self, handle: Handler) -> int:
        """Read what the SMSC sent (reports, texts), keep the bind alive."""
        self.handle = handle
        with self._lock:
            client = self._bound()
            n = 0
            try:
                while True:
                    sock = client._socket
                    if sock is None or not select.select([sock], [], [], 0)[0]:
                        break
                    client.read_once(auto_send_enquire_link=False)
                    self._last_io = time.monotonic()
                    n += 1
                if time.monotonic() - self._last_io >= self.cfg.enquire_link_s:
                    client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
                    self._last_io = time.monotonic()
            except (smpplib.exceptions.ConnectionError, OSError) as exc:
                raise self._lost(exc) from exc
            return n

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            if client is not None:
                errors = (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError)
                with contextlib.suppress(*errors):
                    client.unbind()
                self._drop(client)
