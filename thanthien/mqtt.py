"""The one wrapper around paho-mqtt used by the hub, the edge agent and the simulator.

It owns the connection's life: MQTT v5 with a fixed client id and a persistent session
(an explicit SessionExpiryInterval), automatic reconnect with backoff, the Last Will, a
"birth" callback on every (re)connect, subscriptions made in ``on_connect`` so they
survive reconnects, and incoming messages routed through a table of handlers.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from thanthien.config import MqttSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    properties: Properties | None
    qos: int = 0
    """The QoS it was delivered at: a QoS 1 message may have waited in a persistent session."""


Handler = Callable[[Message], None]

ROUTES_KEPT = 200_000
"""Topics whose handlers a link remembers (a fleet sends on a bounded set: about 5 per node)."""


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class PublishError(RuntimeError):
    """A confirmed publish that the broker refused (e.g. ACL: reason 135) or never acked."""


class MqttLink:
    """One MQTT connection with a routing table.

    ``on_connected(link, session_present)`` runs on the network thread after every
    successful connect, after the subscriptions were sent; use it for birth messages.
    """

    def __init__(
        self,
        *,
        client_id: str,
        settings: MqttSettings,
        username: str | None = None,
        will: Will | None = None,
        persistent: bool = True,
        on_connected: Callable[[MqttLink, bool], None] | None = None,
        on_disconnected: Callable[[MqttLink], None] | None = None,
    ) -> None:
        self.client_id = client_id
        self.settings = settings
        self._routes: list[tuple[str, int, Handler]] = []
        self._matchers: list[tuple[tuple[str, ...], Handler]] = []
        self._by_topic: dict[str, tuple[Handler, ...]] = {}
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._persistent = persistent
        self._refused: dict[int, ReasonCode] = {}
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        """Set once the broker has answered the subscriptions made on the last connect."""
        self.refused_filters: list[str] = []
        self._sub_mid: int | None = None
        self._sub_filters: list[str] = []
        self.last_connect_error: str | None = None

        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=True,
        )
        user = username or settings.username
        if user:
            pw = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(user, pw)
        if settings.tls_ca:
            client.tls_set(
                ca_certs=str(settings.tls_ca),
                certfile=str(settings.tls_cert) if settings.tls_cert else None,
                keyfile=str(settings.tls_key) if settings.tls_key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
        client.max_queued_messages_set(0)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        client.on_subscribe = self._handle_subscribe
        self._client = client

    # -- routing -------------------------------------------------------------------------
    def route(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Subscribe ``handler`` to ``topic_filter`` (now if connected, and on every connect)."""
        with self._lock:
            self._routes.append((topic_filter, qos, handler))
            self._matchers.append((tuple(_unshared(topic_filter).split("/")), handler))
            self._by_topic = {}
        if self.connected.is_set():
            self._client.subscribe(topic_filter, qos=qos)

    def handlers_for(self, topic: str) -> tuple[Handler, ...]:
        """The handlers of the routes whose filter matches ``topic``, in the order routed; worked out
        once per topic (a fleet sends on a bounded set of topics, and this runs for every message on
        the network thread)."""
        known = self._by_topic.get(topic)
        if known is None:
            levels = topic.split("/")
            with self._lock:
                known = tuple(h for f, h in self._matchers if _matches(f, levels))
                if len(self._by_topic) >= ROUTES_KEPT:
                    self._by_topic = {}
                self._by_topic[topic] = known
        return known

    def _handle_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        message = Message(msg.topic, msg.payload, bool(msg.retain), getattr(msg, "properties", None),
                          int(msg.qos))
        handlers = self.handlers_for(message.topic)
        if not handlers:
            log.debug("no handler for %s", msg.topic)
        for handler in handlers:
            try:
                handler(message)
            except Exception:  # a bad message must never kill the network loop
                log.exception("handler %s failed on %s", getattr(handler, "__name__", handler),
                              msg.topic)

    # -- life ----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; reconnects by itself until :meth:`stop`."""
        if self._started:
            return
        self._started = True
        props = Properties(PacketTypes.CONNECT)
        if self._persistent:
            props.SessionExpiryInterval = self.settings.session_expiry_s
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=not self._persistent,
            properties=props,
        )
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def _handle_connect(self, client: paho.Client, _u: object, flags: paho.ConnectFlags,
                        reason: ReasonCode, _p: Properties | None) -> None:
        if reason.is_failure:
            self.last_connect_error = str(reason)
            log.warning("%s: broker refused connection: %s", self.client_id, reason)
            return
        self.last_connect_error = None
        with self._lock:
            subs = list(dict((f, q) for f, q, _h in self._routes).items())
        self.subscribed.clear()
        if subs:
            self._sub_filters = [f for f, _q in subs]
            _rc, self._sub_mid = client.subscribe(subs)
        else:
            self.subscribed.set()
        log.info("%s: connected (session present: %s)", self.client_id, flags.session_present)
        self.connected.set()
        if self._on_connected is not None:
            try:
                self._on_connected(self, flags.session_present)
            except Exception:
                log.exception("%s: on_connected hook failed", self.client_id)

    def _handle_subscribe(self, _c: paho.Client, _u: object, mid: int,
                          reasons: list[ReasonCode], _p: Properties | None) -> None:
        if mid != self._sub_mid:
            return
        refused = [f for f, r in zip(self._sub_filters, reasons, strict=False) if r.is_failure]
        for topic_filter in refused:
            log.warning("%s: subscription to %s refused", self.client_id, topic_filter)
        self.refused_filters = refused
        self.subscribed.set()

    def _handle_disconnect(self, _c: paho.Client, _u: object, _f: paho.DisconnectFlags,
                           reason: ReasonCode, _p: Properties | None) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        if was_connected:
            log.info("%s: disconnected: %s", self.client_id, reason)
            if self._on_disconnected is not None:
                try:
                    self._on_disconnected(self)
                except Exception:
                    log.exception("%s: on_disconnected hook failed", self.client_id)

    def stop(self, final: tuple[str, bytes, bool] | None = None, timeout: float = 5.0) -> None:
        """Publish ``final`` (topic, payload, retain) if connected, disconnect cleanly (no
        Will) and stop the network thread. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if final is not None and self.connected.is_set():
            try:
                self.publish_confirmed(final[0], final[1], qos=1, retain=final[2], timeout=timeout)
            except PublishError as exc:
                log.warning("%s: final message not confirmed: %s", self.client_id, exc)
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
        self.connected.clear()

    def __enter__(self) -> MqttLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- publishing ----------------------------------------------------------------------
    def _handle_publish(self, _c: paho.Client, _u: object, mid: int, reason: ReasonCode,
                        _p: Properties | None) -> None:
        if reason.is_failure:
            with self._lock:
                self._refused[mid] = reason
                if len(self._refused) > 10_000:  # nobody waited for these
                    self._refused.pop(next(iter(self._refused)))

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                properties: Properties | None = None) -> paho.MQTTMessageInfo:
        """Fire and forget (paho queues QoS>0 messages while reconnecting)."""
        return self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    def publish_confirmed(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                          timeout: float = 5.0, properties: Properties | None = None) -> None:
        """Publish and wait for the broker's PUBACK; raise :class:`PublishError` if it does
        not come in time or carries a failure reason code (paho's ``wait_for_publish``
        returns silently on timeout and reports ACL refusals as published)."""
        if qos < 1:
            raise ValueError("a confirmed publish needs QoS 1 or 2")
        info = self.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise PublishError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise PublishError(f"publish to {topic} not acknowledged within {timeout} s")
        with self._lock:
            refused = self._refused.pop(info.mid, None)
        if refused is not None:
            raise PublishError(f"broker refused publish to {topic}: {refused} ({refused.value})")


def _matches(topic_filter: tuple[str, ...], levels: list[str]) -> bool:
    """Whether a topic (split into its levels) matches a filter (split likewise): ``+`` is one level,
    ``#`` the rest (the parent level too); a filter starting with a wildcard does not match a topic
    starting with ``$`` (MQTT 4.7.2)."""
    if levels and levels[0].startswith("$") and topic_filter and topic_filter[0] in ("+", "#"):
        return False
    for i, part in enumerate(topic_filter):
        if part == "#":
            return True
        if i >= len(levels) or (part != "+" and part != levels[i]):
            return False
    return len(levels) == len(topic_filter)


class _BufferedSocket:
    """The broker's socket, read a buffer at a time: paho reads each packet's fixed header a byte at
    a time (two or three ``recv`` calls per message, each a system call that lets go of the GIL, which
    a busy ingest thread then holds for up to a switch interval). ``pending`` tells paho's loop that
    bytes are waiting here (what it asks of an SSL socket), so it reads them without a ``select``."""

    __slots__ = ("_data", "_pos", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._data = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        data, pos = self._data, self._pos
        if pos >= len(data):
            data = self._sock.recv(max(size, READ_BUFFER))  # BlockingIOError etc. go to paho as they are
            if len(data) <= size:
                return data
            pos = 0
            self._data = data
        end = pos + size
        self._pos = end
        return data[pos:end]

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)
        return len(self._data) - self._pos + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


READ_BUFFER = 65536


class _Waker:
    """paho's wake-up socket, written only from other threads: paho writes a byte to it for every
    packet it queues so that its network thread leaves ``select`` and sends it, also when the network
    thread itself queues it (a PUBACK for every QoS 1 message received, an ack published by a handler),
    which then needs no waking: the next turn of its loop sends what is queued."""

    __slots__ = ("_ident", "_sock")

    def __init__(self, sock: Any, ident: int | None) -> None:
        self._sock = sock
        self._ident = ident

    def send(self, data: bytes) -> int:
        if threading.get_ident() == self._ident:
            return len(data)
        return int(self._sock.send(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Client(paho.Client):
    """paho's client with a buffered read of the broker's socket and no self-wake on its own thread
    (:class:`_BufferedSocket`, :class:`_Waker`): fewer system calls per message."""

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        """Hand every message to ``on_message``: the link routes each one itself
        (:meth:`MqttLink.handlers_for`, once per topic) and adds no per-topic callbacks, so paho's
        matching of every message against them (a matcher walk per message, about 3 % of a busy
        hub's network thread) is skipped."""
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception:
                log.exception("MQTT message handler failed (message id %s)", message.mid)
                if not self.suppress_exceptions:
                    raise

    def message_callback_add(self, sub: str, callback: Any) -> None:
        raise NotImplementedError("route topics with MqttLink.route (this client skips per-topic callbacks)")

    def loop_start(self) -> MQTTErrorCode:
        rc = super().loop_start()
        thread = self._thread
        if thread is not None and self._sockpairW is not None and not isinstance(self._sockpairW, _Waker):
            self._sockpairW = _Waker(self._sockpairW, thread.ident)  # type: ignore[assignment]
        return rc


def _unshared(topic_filter: str) -> str:
    """The topic part of an MQTT v5 shared subscription (``$share/<group>/<filter>``)."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        if len(parts) == 3:
            return parts[2]
    return topic_filter


def request_properties(response_topic: str, correlation: bytes) -> Properties:
    """PUBLISH properties for a command that expects an answer (MQTT v5 request/response)."""
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    return props
