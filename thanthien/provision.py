"""Provisioning a node: broker credentials plus a ready edge config file."""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path

from thanthien.broker import reload_running, set_password
from thanthien.pki import issue_client
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
{credentials}

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
    tls_dir: Path | None = None,
) -> Path:
    """Write the node's edge config to ``out`` with its credentials: with ``tls_dir`` (a CA
    made by ``provision ca``) a client certificate whose common name is the node id;
    otherwise a new broker password in ``broker_data``'s password file (a broker started by
    ``thanthien broker`` there reloads its users at once).
    """
    if not re.match(ID_PATTERN, node_id):
        raise ValueError(f"node id {node_id!r} must match {ID_PATTERN}")
    if tls_dir is not None:
        files = issue_client(tls_dir, node_id)
        credentials = (f'tls_ca = "{(tls_dir / "ca.crt").resolve()}"\n'
                       f'tls_cert = "{files.cert.resolve()}"\ntls_key = "{files.key.resolve()}"')
    else:
        password = password or secrets.token_urlsafe(24)
        broker_data.mkdir(parents=True, exist_ok=True)
        set_password(broker_data / "passwd", node_id, password)
        if reload_running(broker_data):
            log.info("broker in %s reloaded its users", broker_data)
        credentials = f'password = "{password}"'
    data_dir = data_dir or Path("var/edge") / node_id
    audio = "wav" if hardware == "mock" else "pyaudio"
    wav_line = f'wav_dir = "{data_dir / "audio"}"' if audio == "wav" else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = EDGE_CONFIG_TEMPLATE.format(
        node_id=node_id, site=site, hardware=hardware, data_dir=data_dir, host=host,
        port=port, credentials=credentials, audio=audio, wav_line=wav_line, path=out,
    )
    out.write_text(text, encoding="utf-8")
    out.chmod(0o600)
    return out
