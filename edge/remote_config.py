"""The node's configuration as the hub holds it (``{root}/node/{node}/config``, retained).

The local file keeps only the bootstrap: ``node`` (id, hardware, data directory), ``mqtt`` (the
broker identity), ``hub`` (its URL and the node's media token) and ``audio``. The hub owns the
rest (:data:`~thanthien.edge.settings.REMOTE_SECTIONS`: the rating boxes, cameras, speaker,
telemetry, ...) and sends it as a versioned :class:`~thanthien.protocol.payloads.NodeConfig`.

A config received is merged over the local file and validated with the same models
(:class:`~thanthien.edge.settings.EdgeSettings`, every problem listed); the agent applies it
live where it can (``EdgeAgent.apply_settings``) and only then keeps it in
``<data_dir>/node-config.json`` as the last good version, which the next start uses before the
broker is even reached. A config that does not validate, is for another node or cannot be
applied is refused: the node keeps running the version it had and says why on
``config/status`` (retained), as it says the version it runs after every connect.

Camera passwords travel in the config: nothing here logs a config's contents.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from thanthien.config import ConfigError, validate_data
from thanthien.edge.commands import MessageWorker
from thanthien.edge.settings import REMOTE_SECTIONS, EdgeSettings
from thanthien.mqtt import Message
from thanthien.protocol.payloads import ConfigStatus, NodeConfig, PayloadError, decode, utc_now

log = logging.getLogger(__name__)

CONFIG_FILE = "node-config.json"


class ConfigRefused(Exception):
    """A config the node cannot run; the message says why (it is published, never the config)."""


def merge(local: EdgeSettings, config: NodeConfig | None) -> EdgeSettings:
    """The local bootstrap with the hub's sections over it, validated as one edge config.

    A section the hub sends replaces the local one whole; a section it leaves out stays as the
    file says. Raises :class:`ConfigRefused` with every problem."""
    if config is None:
        return local
    unknown = sorted(set(config.settings) - set(REMOTE_SECTIONS))
    if unknown:
        raise ConfigRefused(f"sections the hub may not set: {', '.join(unknown)} "
                            f"(only {', '.join(REMOTE_SECTIONS)})")
    data: dict[str, Any] = {name: getattr(local, name) for name in EdgeSettings.model_fields}
    data.update(config.settings)
    try:
        return validate_data(EdgeSettings, data, f"hub config v{config.version}")
    except ConfigError as exc:
        raise ConfigRefused("; ".join(exc.problems)) from None


class ConfigStore:
    """The last good hub config of this node, kept in its data directory (mode 0600: camera
    passwords are in it)."""

    def __init__(self, data_dir: Path, node_id: str) -> None:
        self.path = data_dir / CONFIG_FILE
        self.node_id = node_id

    def load(self) -> NodeConfig | None:
        if not self.path.exists():
            return None
        try:
            config = decode(NodeConfig, self.path.read_bytes())
        except (OSError, PayloadError) as exc:
            log.warning("ignoring the saved hub config %s: %s", self.path,
                        exc.reason if isinstance(exc, PayloadError) else exc)
            return None
        if config.node != self.node_id:
            log.warning("ignoring the saved hub config %s: it is for node %s", self.path, config.node)
            return None
        return config

    def save(self, config: NodeConfig) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(config.to_bytes())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)


Apply = Callable[[NodeConfig], list[str]]
"""Applies a config (raising :class:`ConfigRefused`); returns the sections that wait for a restart."""


class RemoteConfig(MessageWorker):
    """Receives the hub's config on a worker thread (applying one rebuilds devices: never on the
    MQTT network thread), keeps the last good one and reports the version in force."""

    thread_name = "remote-config"

    def __init__(self, store: ConfigStore, apply: Apply, publish: Callable[[ConfigStatus], None],
                 stop: threading.Event, session: Callable[[], int]) -> None:
        super().__init__(stop, size=4)
        self.store = store
        self._apply = apply
        self._publish = publish
        self._session = session
        self.current: NodeConfig | None = None
        self.refused_version: int | None = None
        self.error: str | None = None
        self.restart_required: list[str] = []
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        return self.current.version if self.current is not None else 0

    def adopt_saved(self, config: NodeConfig | None, error: str | None = None) -> None:
        """What the agent started with: the saved config (or why it refused it)."""
        with self._lock:
            if error is None:
                self.current = config
            elif config is not None:
                self.refused_version, self.error = config.version, error

    def status(self) -> ConfigStatus:
        with self._lock:
            return ConfigStatus(node=self.store.node_id, session=self._session(), at=utc_now(),
                                version=self.version, refused_version=self.refused_version,
                                error=self.error[:1000] if self.error else None,
                                restart_required=list(self.restart_required))

    def report(self) -> None:
        try:
            self._publish(self.status())
        except Exception:
            log.exception("publishing the config status failed")

    def handle(self, message: Message) -> None:
        if not message.payload:
            return  # a cleared retained config: keep the one in force
        try:
            config = decode(NodeConfig, message.payload)
        except PayloadError as exc:
            log.warning("refusing a malformed hub config: %s", exc.reason)
            with self._lock:
                self.refused_version, self.error = None, exc.reason
            self.report()
            return
        self.receive(config)

    def receive(self, config: NodeConfig) -> bool:
        """Apply one config from the hub; True if it is now in force. The status goes out either way."""
        if config.node != self.store.node_id:
            return self._refuse(config, f"config for node {config.node!r}, this is {self.store.node_id!r}")
        if self.current is not None and config.version <= self.current.version:
            if config.version < self.current.version:
                log.info("ignoring hub config version %d (version %d is in force)", config.version,
                         self.current.version)
            self.report()
            return config.version == self.current.version
        try:
            restart = self._apply(config)
        except ConfigRefused as exc:
            return self._refuse(config, str(exc))
        self.store.save(config)
        with self._lock:
            self.current, self.restart_required = config, restart
            if self.refused_version is not None and self.refused_version <= config.version:
                self.refused_version, self.error = None, None
        log.info("hub config version %d in force%s", config.version,
                 f" (restart needed for {', '.join(restart)})" if restart else "")
        self.report()
        return True

    def _refuse(self, config: NodeConfig, why: str) -> bool:
        log.warning("refusing hub config version %d: %s", config.version, why)
        with self._lock:
            self.refused_version, self.error = config.version, why
        self.report()
        return False


def describe(config: NodeConfig | None) -> str:
    """One line for a log: the version and which sections, never their values."""
    if config is None:
        return "no hub config"
    return f"hub config version {config.version} ({', '.join(sorted(config.settings)) or 'empty'})"

