"""Helpers shared by the tests: MQTT clients on the harness broker and waiting on messages."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from thanthien.broker import Broker
from thanthien.config import MqttSettings
from thanthien.mqtt import Message, MqttLink


@dataclass(frozen=True)
class Account:
    username: str
    password: str


HUB = Account("hub", "hub-secret")
NODE_A = Account("node-a", "node-a-secret")
NODE_B = Account("node-b", "node-b-secret")


def make_broker(data_dir: Path, accounts: tuple[Account, ...] = (HUB, NODE_A, NODE_B)) -> Broker:
    """A prepared (not started) broker with the project's config and these users."""
    broker = Broker(data_dir, hub_user=HUB.username)
    broker.prepare()
    for account in accounts:
        broker.add_user(account.username, account.password)
    return broker


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, every: float = 0.05) -> bool:
    """Poll a condition that has no event to wait on (database rows, other processes)."""
    tick = threading.Event()
    waited = 0.0
    while not predicate():
        if waited >= timeout:
            return False
        tick.wait(every)
        waited += every
    return True


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
