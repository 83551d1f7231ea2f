"""`thanthien demo`: a private broker, the hub (``thanthien hub serve`` as a child process)
and the simulated Mường Ảng town (:mod:`thanthien.sim.town`) in this process.

Everything lives under one directory (default ``var/demo``): ``secrets.json`` (the demo
logins, the hub's token key; created once, mode 0600), ``broker/``, ``hub.toml`` and ``hub/``
(SQLite, log), ``town/`` (node outboxes, WAV sinks, ledger, each node's enrolled ``edge.toml``).
The history is seeded on the first run only, so a second run starts in seconds.

The town's nodes enroll the way a real Pi does, on the first run (:class:`Enroller`; a later run
keeps each node's identity, as a Pi keeps it, and only updates what the hub holds for it): a login
asks the hub for each node's one-time code, gives the hub the values it holds for the node
(the GPIO of its simulated boxes and relay, the addresses of its simulated cameras, which get
new ports each run) and ``thanthien edge enroll`` fetches the node's broker identity (the hub
writes the broker's password file and reloads it), media token and config. Re-enrolling all
sixteen nodes on every run reloaded Mosquitto 2.0.11 sixteen times while the nodes reconnected,
and it crashed ("free(): invalid pointer"). Nothing but the hub's own broker user is put in the
password file by hand.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from thanthien.broker import Broker
from thanthien.sim import town
from thanthien.sim.seed import Login

log = logging.getLogger(__name__)

ROLES = (("admin", "admin", "Quản trị hệ thống", town.COMMUNE),
         ("officer", "canbo", "Cán bộ văn phòng", town.COMMUNE),
         ("it", "kythuat", "Cán bộ kỹ thuật", town.COMMUNE),
         ("leader", "lanhdao", "Chủ tịch UBND thị trấn", town.COMMUNE),
         ("admin", "qtangto", "Quản trị xã Ẳng Tở", town.NEIGHBOUR),
         ("officer", "cbangto", "Cán bộ xã Ẳng Tở", town.NEIGHBOUR),
         ("admin", "tinh", "Quản trị cấp tỉnh", None), ("leader", "lanhdaotinh", "Lãnh đạo cấp tỉnh", None))
"""(role, username, full name, commune) of the demo's logins: the town's, the neighbour's and the
province's (no commune)."""
PROVINCE_ADMIN = "tinh"


@dataclass
class DemoSecrets:
    nodes: dict[str, str]
    logins: list[Login]
    token_key: str

    @classmethod
    def load_or_create(cls, path: Path) -> DemoSecrets:
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            nodes = data["nodes"]
            for node in town.node_ids():  # a town grown since the last run
                nodes.setdefault(node, secrets.token_urlsafe(16))
            logins = [Login(**x) for x in data["logins"]]
            known = {x.username for x in logins}  # logins added since the last run
            logins += [_login(*row) for row in ROLES if row[1] not in known]
            made = cls(nodes, logins, data["token_key"])
        else:
            logins = [_login(*row) for row in ROLES]
            made = cls({n: secrets.token_urlsafe(16) for n in town.node_ids()}, logins,
                       secrets.token_urlsafe(32))
        made.save(path)
        return made

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"nodes": self.nodes, "logins": [vars(x) for x in self.logins],
                                   "token_key": self.token_key}, ensure_ascii=False, indent=1),
                       encoding="utf-8")
        tmp.chmod(0o600)
        os.replace(tmp, path)


def _login(role: str, username: str, full_name: str, commune: str | None) -> Login:
    return Login(role, username, f"{username}-{secrets.token_hex(3)}", full_name, commune)


# -- a TOML writer for the hub config (tables, arrays of tables, scalars) -----------------------
def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_tables(v)}
    lines = [f"{k} = {_value(v)}" for k, v in scalars.items()]
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            lines += ["", f"[{name}]", to_toml(value, name)]
        elif _is_tables(value):
            for item in value:
                lines += ["", f"[[{name}]]", to_toml(item, name)]
    return "\n".join(line for line in lines if line is not None)


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def hub_config(root: Path, *, broker_port: int, hub_password: str, http_port: int, token_key: str) -> Path:
    broker_data = (root / "broker").resolve()
    data = {
        "hub": {"data_dir": str((root / "hub").resolve()), "site_name": town.SITE_NAME},
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "username": "hub", "password": hub_password,
                 "reconnect_min_s": 0.5, "reconnect_max_s": 5.0},
        "http": {"host": "127.0.0.1", "port": http_port, "secret_key": token_key},
        "logging": {"level": "INFO"},
        "registry": town.registry_declarations(),
        # nodes enroll with one-time codes; the hub writes their passwords into the broker's file
        "enrollment": {"broker_data": str(broker_data), "broker_host": "127.0.0.1",
                       "broker_port": broker_port},
        # SMS through Gammu's dummy driver: a folder that behaves like a GSM modem (hub/README.md)
        "sms": {"gateway": "gammu", "brand": "MUONG ANG", "office_name": "Bo phan mot cua TT Muong Ang",
                "gammu": {"run_smsd": True, "device": str((root / "hub" / "dummy-modem").resolve()),
                          "connection": "none", "model": "dummy"}},
    }
    path = root / "hub.toml"
    path.write_text("# Written by `thanthien demo` on every start; edit the town in "
                    "firmware-sim/town.py instead.\n" + to_toml(data) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@dataclass
class HubProcess:
    """``thanthien hub serve`` as a child process, its output in ``hub.log``."""

    config: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "thanthien.cli", "hub", "serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)  # Ctrl-C reaches the demo only; it stops the hub in order

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_http(self, url: str, stop: threading.Event, timeout: float = 60.0) -> bool:
        import httpx

        waited = 0.0
        while waited < timeout and not stop.is_set():
            if not self.running:
                return False
            try:
                httpx.get(url, timeout=1.0)
                return True
            except httpx.HTTPError:
                pass
            stop.wait(0.2)
            waited += 0.2
        return False

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("the hub did not stop within %.0f s; killing it", timeout)
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def next_broadcast(base: str, login: Login, stop: threading.Event, timeout: float = 10.0) -> str | None:
    """The next scheduled broadcast as the hub's API shows it (waits for the scheduler to lay
    out the occurrences), e.g. ``Bản tin buổi sáng, 2026-11-26 06:30 (12 cụm loa)``."""
    import httpx

    waited = 0.0
    try:
        token = httpx.post(f"{base}/api/v1/auth/login", timeout=5,
                           data={"username": login.username, "password": login.password}
                           ).json()["access_token"]
        while waited < timeout and not stop.is_set():
            items = httpx.get(f"{base}/api/v1/occurrences", headers={"Authorization": f"Bearer {token}"},
                              timeout=5).json()
            if isinstance(items, list) and items:
                first = min(items, key=lambda o: o["start_at"])
                local = datetime.fromisoformat(first["start_at_local"])
                return f"{first['title']}, {local:%Y-%m-%d %H:%M} ({first['targets']} cụm loa)"
            stop.wait(0.5)
            waited += 0.5
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        log.warning("could not read the next broadcast: %s", exc)
    return None


def seed(root: Path, config: Path, secrets_: DemoSecrets, *, history_days: float | None,
         now: datetime) -> None:
    """Seed on the first run (the nodes get their media tokens when they enroll)."""
    from thanthien.config import load_config
    from thanthien.hub.db.session import Database
    from thanthien.hub.settings import HubSettings
    from thanthien.sim.seed import seed_town

    settings = load_config(HubSettings, config)
    settings.hub.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    try:
        db.migrate()
        start = now - timedelta(days=history_days) if history_days is not None else None
        report = seed_town(db, now=now, logins=secrets_.logins, start=start, settings=settings)
    finally:
        db.dispose()
    if report.seeded:
        log.info("seeded %d ratings since %s and %d shifts", report.ratings,
                 report.start.date() if report.start else "?", report.shifts)
    else:
        log.info("the town is already seeded (%s); reusing it", root)


def prepare_broker(root: Path, port: int) -> tuple[Broker, str]:
    """The broker with the hub's user; the nodes' users come with their enrollment."""
    from thanthien.commands.broker import ensure_hub_user

    broker = Broker(root / "broker", port=port, own_session=True)
    broker.prepare()
    hub_password = ensure_hub_user(broker, broker.data_dir / "hub.secret")
    return broker, hub_password


class Enroller:
    """Enrolls each town node as IT and a Pi would (``SimEnv.enroll``): a one-time code from
    the hub (IT's login), the hub told what hardware the node drives, then ``thanthien edge
    enroll`` with the code; returns the bootstrap config it wrote."""

    def __init__(self, base: str, login: Login) -> None:
        import httpx

        self.base = base
        self.client = httpx.Client(base_url=f"{base}/api/v1", timeout=30)
        token = self.client.post("/auth/login", data={"username": login.username, "password": login.password})
        token.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def __call__(self, node: Any) -> Path:
        from thanthien.edge.enroll import enroll

        config = node.data_dir / "edge.toml"
        if config.exists():  # enrolled in an earlier run, as a Pi stays: only the hub's values are new
            self.client.put(f"/nodes/{node.node_id}/config", json=node.hub_values()).raise_for_status()
            log.info("%s already enrolled; its hub config updated", node.node_id)
            return config
        code = self.client.post(f"/nodes/{node.node_id}/enrollment")
        code.raise_for_status()
        self.client.put(f"/nodes/{node.node_id}/config", json=node.hub_values()).raise_for_status()
        done = enroll(self.base, code.json()["code"], data_dir=node.data_dir,
                      config_path=node.data_dir / "edge.toml", hardware="mock")
        log.info("%s enrolled (hub config version %d)", node.node_id, done.config_version)
        return done.config_path

    def close(self) -> None:
        self.client.close()
