"""Provisioning a node: broker credentials plus a ready edge config file."""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path

from thanthien.broker import reload_running, set_password
from thanthien.protocol.ids import ID_PATTERN

log = logging.getLogger(__name__)

EDGE_CONFIG_TEMPLATE = """\
# Edge config for node {node_id}, written by `thanthien provision node`.
# Check it with: thanthien config check {path}

[node]
id = "{node_id}"
site = "{site}"
hardware = "{hardware}"
data_dir = "{data_dir}"

[mqtt]
host = "{host}"
port = {port}
password = "{password}"

[telemetry]
interval_s = 30

[audio]
output = "{audio}"
{wav_line}
"""


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
) -> Path:
    """Create (or rotate) the node's broker password and write its edge config to ``out``.

    A broker started by ``thanthien broker`` in ``broker_data`` reloads its users at once.
    """
    if not re.match(ID_PATTERN, node_id):
        raise ValueError(f"node id {node_id!r} must match {ID_PATTERN}")
    password = password or secrets.token_urlsafe(24)
    broker_data.mkdir(parents=True, exist_ok=True)
    set_password(broker_data / "passwd", node_id, password)
    if reload_running(broker_data):
        log.info("broker in %s reloaded its users", broker_data)
    data_dir = data_dir or Path("var/edge") / node_id
    audio = "wav" if hardware == "mock" else "pyaudio"
    wav_line = f'wav_dir = "{data_dir / "audio"}"' if audio == "wav" else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = EDGE_CONFIG_TEMPLATE.format(
        node_id=node_id, site=site, hardware=hardware, data_dir=data_dir, host=host,
        port=port, password=password, audio=audio, wav_line=wav_line, path=out,
    )
    out.write_text(text, encoding="utf-8")
    out.chmod(0o600)
    return out
