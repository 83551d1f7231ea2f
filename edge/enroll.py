"""``thanthien edge enroll --hub URL --code CODE``: a Pi fetches its identity from the hub.

The node makes its own key (ECDSA P-256) and sends only a signing request with the one-time
code IT gave (``POST {hub}/api/v1/enroll``). The hub answers with the node's broker identity (a
password, or a certificate for that key), its media token and the configuration it holds for
the node. Nothing is written before that answer: a wrong, used or expired code is refused with
the hub's reason and leaves the Pi as it was. Then, each file written aside and renamed in,
readable by its owner only (0600, owned by ``owner`` when given, e.g. the service's user):

* the bootstrap config (``--config``): node id, hardware, data directory, broker, hub, audio;
* with a certificate: ``<data>/tls/node.key`` (never sent anywhere), ``node.crt`` and ``ca.crt``;
* the hub's config, as the last good version (``<data>/node-config.json``), so the agent starts
  with its devices even before it reaches the broker.

Enrolling again (a new code) rotates the identity: the hub revokes the old one.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from thanthien import __version__
from thanthien.edge.remote_config import CONFIG_FILE
from thanthien.pki import make_csr
from thanthien.protocol.payloads import NodeConfig
from thanthien.provision import bootstrap_config, write_private

log = logging.getLogger(__name__)

TLS_DIR = "tls"
RELEASE_KEY = "release-key.pem"
"""The deployment's release public key from the hub: the node installs only bundles it signed."""


class EnrollError(RuntimeError):
    """Enrollment did not happen; the message says why (the hub's own words when it refused)."""


@dataclass(frozen=True)
class Enrolled:
    node_id: str
    config_path: Path
    data_dir: Path
    identity: str  # password | certificate
    config_version: int

    @property
    def run_command(self) -> str:
        return f"thanthien edge run --config {self.config_path}"


def api_base(hub: str) -> str:
    """``http://hub:8080``, ``http://hub:8080/`` or ``…/api/v1/`` -> ``http://hub:8080/api/v1``."""
    parts = urlsplit(hub.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EnrollError(f"--hub must be an http(s) URL such as http://hub.local:8080 (got {hub!r})")
    path = parts.path.rstrip("/")
    if not path.endswith("/api/v1"):
        path += "/api/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


def _post(url: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        raise EnrollError(f"the hub refused the enrollment ({exc.code}): {_detail(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise EnrollError(f"the hub at {url} cannot be reached: {getattr(exc, 'reason', exc)}") from None
    except ValueError as exc:
        raise EnrollError(f"the hub's answer is not JSON: {exc}") from None


def enroll(hub: str, code: str, *, data_dir: Path, config_path: Path, hardware: str = "gpio",
           owner: str | None = None, timeout_s: float = 30.0, releases_root: Path | None = None) -> Enrolled:
    """Trade the code for this node's identity and write its files (see the module)."""
    base = api_base(hub)
    key_pem, csr_pem = make_csr("thanthien-node")  # the hub sets the name: the node id
    body = _post(f"{base}/enroll", {"code": code, "csr": csr_pem.decode(), "agent_version": __version__[:32]},
                 timeout_s)
    try:
        node_id = str(body["node_id"])
        broker = body["broker"]
        config = NodeConfig.model_validate(body["config"]) if body.get("config") else None
    except (ValueError, KeyError, TypeError) as exc:
        raise EnrollError(f"the hub's answer cannot be used: {exc}") from None
    data_dir = data_dir.resolve()
    mqtt: dict[str, str | int | Path] = {"host": broker["host"], "port": int(broker["port"])}
    identity = "password"
    if broker.get("certificate"):
        identity = "certificate"
        tls = data_dir / TLS_DIR
        mqtt.update(tls_ca=write_private(tls / "ca.crt", broker["ca"], owner=owner),
                    tls_cert=write_private(tls / "node.crt", broker["certificate"], owner=owner),
                    tls_key=write_private(tls / "node.key", key_pem, owner=owner))
    else:
        if not broker.get("password"):
            raise EnrollError("the hub's answer holds neither a password nor a certificate")
        if broker.get("tls") and broker.get("ca"):
            mqtt["tls_ca"] = write_private(data_dir / TLS_DIR / "ca.crt", broker["ca"], owner=owner)
        mqtt["password"] = broker["password"]
    hub_section = {"url": body["hub_url"], "media_token": body["media_token"]}
    extra = ""
    if body.get("release_key"):
        key_path = write_private(data_dir / RELEASE_KEY, body["release_key"], owner=owner)
        extra = "\n[update]\n" + (f"root = {json.dumps(str(releases_root))}\n" if releases_root else "")
        extra += f"public_key = {json.dumps(str(key_path))}\n"
    if config is not None:
        write_private(data_dir / CONFIG_FILE, config.to_bytes(), owner=owner)
    text = bootstrap_config(node_id=node_id, data_dir=data_dir, hardware=hardware, mqtt=mqtt, hub=hub_section,
                            written_by="thanthien edge enroll", extra=extra)
    write_private(config_path, text, owner=owner)
    log.info("node %s enrolled with a %s identity; config in %s", node_id, identity, config_path)
    return Enrolled(node_id=node_id, config_path=config_path, data_dir=data_dir, identity=identity,
                    config_version=config.version if config else 0)


def _detail(error: urllib.error.HTTPError) -> str:
    raw = error.read()
    try:
        detail = json.loads(raw).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # a validation error: say which field
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail or raw.decode("utf-8", "replace")[:300] or error.reason)


def describe(result: Enrolled) -> str:
    """What the command prints (no secret)."""
    return json.dumps({"node": result.node_id, "identity": result.identity, "config": str(result.config_path),
                       "config_version": result.config_version}, ensure_ascii=False)
