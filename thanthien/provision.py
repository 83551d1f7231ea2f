"""Provisioning a node: broker credentials plus a ready edge config file.

Two ways: ``thanthien provision node`` on the hub's machine (a broker password or a certificate
made there, and a file to carry to the Pi), or ``thanthien edge enroll`` on the Pi with a
one-time code (``thanthien.edge.enroll``: the hub hands over the identity, the node's key stays
on the Pi). Both write the same bootstrap file (:func:`bootstrap_config`): the node id, hardware
and data directory, the broker identity, the hub's address and media token, the audio output;
an enrolled node gets everything else (devices, speaker, telemetry) from the hub.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from pathlib import Path

from thanthien.broker import reload_running, set_password
from thanthien.pki import issue_client
from thanthien.protocol.ids import ID_PATTERN

log = logging.getLogger(__name__)


def _toml(value: str | int | bool | Path) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def bootstrap_config(*, node_id: str, data_dir: Path, hardware: str, mqtt: dict[str, str | int | Path],
                     site: str = "", hub: dict[str, str] | None = None, written_by: str,
                     extra: str = "") -> str:
    """The edge TOML of a node's bootstrap: ``[node]``, ``[mqtt]`` (its identity), ``[hub]``
    (when known) and ``[audio]`` (``wav`` files for mock hardware, the sound card otherwise)."""
    audio = "wav" if hardware == "mock" else "pyaudio"
    lines = [f"# Edge config for node {node_id}, written by `{written_by}`.",
             "# Check it with: thanthien config check FILE", "",
             "[node]", f"id = {_toml(node_id)}", f"site = {_toml(site)}", f"hardware = {_toml(hardware)}",
             f"data_dir = {_toml(data_dir)}", "", "[mqtt]"]
    lines += [f"{key} = {_toml(value)}" for key, value in mqtt.items()]
    if hub:
        lines += ["", "[hub]"] + [f"{key} = {_toml(value)}" for key, value in hub.items()]
    lines += ["", "[audio]", f"output = {_toml(audio)}"]
    if audio == "wav":
        lines.append(f"wav_dir = {_toml(data_dir / 'audio')}")
    return "\n".join(lines) + "\n" + extra


def write_private(path: Path, data: bytes | str, *, owner: str | None = None) -> Path:
    """Write a file only its owner may read (0600), replaced atomically; ``owner`` (a user name,
    as root) gets it, e.g. the service's user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o600)
    if owner is not None:
        import pwd

        entry = pwd.getpwnam(owner)
        os.chown(tmp, entry.pw_uid, entry.pw_gid)
    os.replace(tmp, path)
    return path


def provision_node(
    node_id: str,
    *,
    broker_data: Path,
    out: Path,
    host: str = "127.0.0.1",
    port: int = 1883,
    site: str = "",
    hardware: str = "gpio",
    data_dir: Path | None = None,
    password: str | None = None,
    tls_dir: Path | None = None,
) -> Path:
    """Write the node's edge config to ``out`` with its credentials: with ``tls_dir`` (a CA
    made by ``provision ca``) a client certificate whose common name is the node id;
    otherwise a new broker password in ``broker_data``'s password file (a broker started by
    ``thanthien broker`` there reloads its users at once).
    """
    if not re.match(ID_PATTERN, node_id):
        raise ValueError(f"node id {node_id!r} must match {ID_PATTERN}")
    mqtt: dict[str, str | int | Path] = {"host": host, "port": port}
    if tls_dir is not None:
        files = issue_client(tls_dir, node_id)
        mqtt.update(tls_ca=(tls_dir / "ca.crt").resolve(), tls_cert=files.cert.resolve(),
                    tls_key=files.key.resolve())
    else:
        password = password or secrets.token_urlsafe(24)
        broker_data.mkdir(parents=True, exist_ok=True)
        set_password(broker_data / "passwd", node_id, password)
        if reload_running(broker_data):
            log.info("broker in %s reloaded its users", broker_data)
        mqtt["password"] = password
    data_dir = data_dir or Path("var/edge") / node_id
    text = bootstrap_config(node_id=node_id, data_dir=data_dir, hardware=hardware, mqtt=mqtt, site=site,
                            written_by="thanthien provision node", extra="\n[telemetry]\ninterval_s = 30\n")
    return write_private(out, text)
