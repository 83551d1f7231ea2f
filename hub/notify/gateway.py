"""The SMS gateway seam: what the outbox hands over and what comes back.

A gateway accepts a message (``submit``) or says why not (``GatewayError``: ``retry`` when
the gateway is down or busy, not when the number is refused), tells whether it already holds
a message the hub may have handed over before a crash (``find``), reports the state of the
messages it holds (``track``) and passes what it receives, texts and delivery reports, to the
hub's handler, acknowledging each to its peer only after the handler returned (the handler
commits): nothing received is lost when the hub dies half-way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

ReportStatus = Literal["sent", "delivered", "undelivered", "failed"]


@dataclass(frozen=True)
class Outgoing:
    id: int
    phone: str  # E.164
    body: str
    encoding: Literal["gsm7", "ucs2"]
    urgent: bool = False


@dataclass(frozen=True)
class Accepted:
    """The gateway holds the message: ``handed`` (a daemon will send it) or ``sent`` (the
    network took it)."""

    ref: str
    state: Literal["handed", "sent"]


@dataclass(frozen=True)
class Received:
    ref: str
    sender: str
    text: str
    at: datetime


@dataclass(frozen=True)
class Report:
    ref: str
    status: ReportStatus
    at: datetime
    raw: str = ""


Event = Received | Report
Handler = Callable[[Event], None]


class GatewayError(Exception):
    """The gateway did not take the message. ``retry``: it may later (it is down or busy).
    ``maybe_sent``: the message had left for the gateway when the link broke, so it may hold it
    (an SMSC that stored a ``submit_sm`` and dropped before its answer): sending it again could
    reach the citizen twice."""

    def __init__(self, message: str, *, retry: bool, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.retry = retry
        self.maybe_sent = maybe_sent


class CannotTell(Exception):
    """The gateway cannot say whether it holds a message (an SMSC has no such query)."""


class Gateway(Protocol):
    name: str
    carries_brand: bool
    """True when the brand name goes as the sender (SMPP alphanumeric source address); False
    when it must be written into the text (a SIM card's own number sends)."""

    def submit(self, msg: Outgoing) -> Accepted: ...

    def find(self, msg_id: int) -> Accepted | None:
        """The earlier hand-over of this message, ``None`` when there was none; ``CannotTell``."""
        ...

    def track(self, refs: list[str]) -> list[Report]: ...

    def receive(self, handle: Handler) -> int:
        """Pass what arrived to ``handle`` (which commits), acknowledge it; how many."""
        ...

    def close(self) -> None: ...
