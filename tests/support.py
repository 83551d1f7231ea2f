"""Helpers shared by the tests: MQTT clients on the harness broker, waiting on events, logging
in to the hub."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from thanthien.broker import Broker
from thanthien.config import MqttSettings
from thanthien.mqtt import Message, MqttLink

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")


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


@contextmanager
def cheap_hasher() -> Iterator[None]:
    """The hub's passwords hashed and checked by argon2 at its lowest cost while inside: at the
    hub's own cost a login takes 0.3 s of CPU on this 2-core machine, and the suite logs in
    thousands of times. The hub's own hasher is back afterwards."""
    from argon2 import PasswordHasher

    from thanthien.hub.services import users

    previous = users.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    try:
        yield
    finally:
        users.use_hasher(previous)


def worker_id() -> str:
    """pytest-xdist's worker (gw0, gw1, ...), or ``main`` when the suite runs in one process."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def private_name(prefix: str) -> str:
    """A name no other test, worker or run uses at the same time (a PostgreSQL database)."""
    return f"{prefix}_{worker_id()}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


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


class EventCollector(Generic[T]):
    """Collects what a handler, a listener or a reader thread hands over; tests wait on it
    with a timeout (a condition variable), never with a sleep.

    ``wait_for`` takes a predicate over the items, ``wait_count`` a number of them, ``first``
    waits for the first item that matches. State kept beside the items (a dict, a second
    list) is changed inside ``changing()`` and waited on with ``wait_until``.
    """

    timeout: float = 10.0
    """The default wait; subclasses shorten it for in-process events."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.lock = threading.Condition()

    def __call__(self, item: T) -> None:
        self.add(item)

    def add(self, item: T) -> None:
        with self.lock:
            self.items.append(item)
            self.lock.notify_all()

    @contextmanager
    def changing(self) -> Iterator[None]:
        """Hold the lock while changing other state; wakes the waiters afterwards."""
        with self.lock:
            try:
                yield
            finally:
                self.lock.notify_all()

    def snapshot(self) -> list[T]:
        with self.lock:
            return list(self.items)

    def wait_until(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        with self.lock:
            return self.lock.wait_for(condition, self.timeout if timeout is None else timeout)

    def wait_for(self, predicate: Callable[[list[T]], bool], timeout: float | None = None) -> bool:
        return self.wait_until(lambda: predicate(self.items), timeout)

    def wait_count(self, n: int, timeout: float | None = None) -> bool:
        return self.wait_for(lambda items: len(items) >= n, timeout)

    def first(self, match: Callable[[T], bool], timeout: float | None = None) -> T | None:
        """The first item that matches, once there is one; None after the timeout."""
        found: list[T] = []

        def look() -> bool:
            found[:] = next(([x] for x in self.items if match(x)), [])
            return bool(found)

        return found[0] if self.wait_until(look, timeout) else None


class Collector(EventCollector[Message]):
    """Collects MQTT messages from a route handler."""

    @property
    def messages(self) -> list[Message]:
        return self.items


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


# -- logging in to the hub (the API's bearer token, the web UI's session cookie) -------------
def api_login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """POST the login form of the API; the answer as it came (tests of refusals look at it)."""
    return client.post("/api/v1/auth/login", data={"username": username, "password": password})


def bearer(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    """The Authorization header of a logged-in API user."""
    response = api_login(client, username, password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def role_headers(client: httpx.Client, password: str) -> Callable[[str], dict[str, str]]:
    """``headers(role)``: the bearer header of the user named after the role, logged in once."""
    tokens: dict[str, dict[str, str]] = {}

    def headers(role: str) -> dict[str, str]:
        if role not in tokens:
            tokens[role] = bearer(client, role, password)
        return tokens[role]

    return headers


def ui_login(client: httpx.Client, username: str, password: str) -> httpx.Client:
    """Logs the client in to the web UI (the session cookie stays on the client)."""
    response = client.post("/ui/login", data={"username": username, "password": password})
    assert response.status_code == 303, response.text
    return client
