"""Helpers shared by the tests: MQTT clients on the harness broker and waiting on messages."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from thanthien.config import MqttSettings
from thanthien.mqtt import Message, MqttLink


@dataclass(frozen=True)
class Account:
    username: str
    password: str


def mqtt_settings(port: int, account: Account | None, **overrides: object) -> MqttSettings:
    values: dict[str, object] = {"host": "127.0.0.1", "port": port, "reconnect_min_s": 0.1,
                                 "reconnect_max_s": 1.0}
    if account is not None:
        values.update(username=account.username, password=account.password)
    values.update(overrides)
    return MqttSettings(**values)


class Collector:
    """Collects messages from a handler; tests wait on it with a timeout."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()

    def __call__(self, message: Message) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Message]], bool], timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.messages), timeout)

    def wait_count(self, n: int, timeout: float = 10.0) -> bool:
        return self.wait_for(lambda msgs: len(msgs) >= n, timeout)


def connected_link(port: int, account: Account | None, client_id: str,
                   routes: dict[str, Callable[[Message], None]] | None = None,
                   timeout: float = 10.0) -> MqttLink:
    """A started link whose subscriptions are in place (SUBACKs received)."""
    link = MqttLink(client_id=client_id, settings=mqtt_settings(port, account), persistent=False)
    for topic_filter, handler in (routes or {}).items():
        link.route(topic_filter, handler)
    link.start()
    if not link.wait_connected(timeout) or not link.subscribed.wait(timeout):
        link.stop()
        raise TimeoutError(f"{client_id} could not connect/subscribe: {link.last_connect_error}")
    return link
