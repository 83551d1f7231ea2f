"""The hub as `thanthien demo` runs it: SQLite under the demo directory, all roles, a demo admin."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from sqlalchemy import select

from thanthien.hub.db.models import User
from thanthien.hub.runtime import HubRuntime
from thanthien.hub.services import users
from thanthien.hub.settings import HubSettings
from thanthien.protocol.payloads import utc_now

log = logging.getLogger(__name__)

DEMO_ADMIN = "admin"


def _secret(path: Path, length: int = 18) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(length)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return value


def start_demo_hub(data_dir: Path, *, broker_port: int, hub_password: str, http_port: int) -> tuple[
        HubRuntime, str, str, str]:
    """Start the hub; returns (runtime, API URL, admin username, admin password). The admin
    password is created on the first run and kept in ``data_dir/admin.secret``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = HubSettings(
        hub={"data_dir": str(data_dir), "site_name": "UBND thị trấn (demo)"},
        mqtt={"host": "127.0.0.1", "port": broker_port, "username": "hub", "password": hub_password},
        http={"host": "127.0.0.1", "port": http_port, "secret_key": _secret(data_dir / "token.secret", 32)},
    )
    runtime = HubRuntime(settings)
    runtime.start()
    if not runtime.wait_http(15):
        runtime.stop()
        raise RuntimeError(f"the hub API could not listen on 127.0.0.1:{http_port} (port in use?)")
    password = _secret(data_dir / "admin.secret")
    with runtime.db.session() as session:
        if session.scalar(select(User).where(User.username == DEMO_ADMIN)) is None:
            users.create_user(session, username=DEMO_ADMIN, password=password, role="admin", now=utc_now(),
                              full_name="Quản trị demo")
    url = f"http://127.0.0.1:{http_port}/api/v1"
    return runtime, url, DEMO_ADMIN, password
