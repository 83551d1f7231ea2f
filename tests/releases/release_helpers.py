"""Real releases for the update tests: the project's own wheel built in versions of its own (once
per session, from a copy of this checkout), bundled with the locked edge wheels and signed with a
key made for the session; simulated nodes that run them from ``releases/<version>/venv`` under a
supervisor that does what systemd does (the guard before each start, ``Restart=always``)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.e2e import toml_value

from thanthien import releases
from thanthien.edge.update.layout import Layout
from thanthien.edge.update.state import switch_link
from thanthien.release_build import Target, build, build_project_wheel

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / "var" / "test-cache" / "wheelhouse"
"""The locked edge wheels, kept between sessions (filled by ``pip download`` the first time)."""
BASE, GOOD, BAD = "0.9.1", "0.9.2", "0.9.3"
_SKIP = shutil.ignore_patterns(
    ".venv",
    "var",
    ".git",
    "tests",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".pytest_cache",
    ".ruff_cache",
    "docs",
)
NO_CONNECT = (
    '        self.link.start()\n        log.info("edge agent %s started',
    '        log.info("edge agent %s started',
)
"""The bad release's bug: its agent never starts its MQTT link (so it fails its health window)."""


@dataclass(frozen=True)
class Kit:
    key: releases.Ed25519PrivateKey
    public_key_path: Path
    private_key_path: Path
    bundles: dict[str, Path]
    template: Path
    """An update root with BASE installed (copied for each node)."""


def _source(tmp: Path, version: str, bug: tuple[str, str] | None = None) -> Path:
    src = tmp / f"src-{version}"
    shutil.copytree(REPO, src, ignore=_SKIP)
    for rel, old, new in (
        ("pyproject.toml", 'version = "0.1.0"', f'version = "{version}"'),
        ("thanthien/__init__.py", '__version__ = "0.1.0"', f'__version__ = "{version}"'),
    ):
        path = src / rel
        text = path.read_text()
        assert old in text, f"{rel} no longer holds {old!r}"
        path.write_text(text.replace(old, new))
    if bug is not None:
        path = src / "edge" / "agent.py"
        text = path.read_text()
        assert bug[0] in text, "the bad release's patch no longer applies"
        path.write_text(text.replace(bug[0], bug[1]))
    return src


def shared_kit(base: Path) -> Kit:
    """The kit in ``base`` (the session's temporary root, shared by its xdist workers): built by the
    first worker to get here, the others wait on the lock and read it."""
    import fcntl

    tmp = base / "release-kit"
    with (base / "release-kit.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (tmp / "done").exists():
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            make_kit(tmp)
            (tmp / "done").write_text("ok\n")
    return load_kit(tmp)


def load_kit(tmp: Path) -> Kit:
    bundles = {v: tmp / "bundles" / f"{releases.NAME}-{v}.tar" for v in (BASE, GOOD, BAD)}
    return Kit(
        key=releases.load_private((tmp / "release.key").read_bytes()),
        public_key_path=tmp / "release.pub",
        private_key_path=tmp / "release.key",
        bundles=bundles,
        template=tmp / "template",
    )


def make_kit(tmp: Path) -> Kit:
    private, public = releases.generate_key()
    (tmp / "release.key").write_bytes(private)
    (tmp / "release.pub").write_bytes(public)
    out: dict[str, Path] = {}
    for version, bug in ((BASE, None), (GOOD, None), (BAD, NO_CONNECT)):
        wheel = build_project_wheel(_source(tmp, version, bug), tmp / f"wheel-{version}")
        out[version] = build(
            out_dir=tmp / "bundles",
            lock_path=REPO / "requirements.lock",
            wheelhouses=[WHEELHOUSE],
            target=Target(python="3.11", platform=None),
            project_wheel=wheel,
            key=private,
        )
    template = tmp / "template"
    layout = Layout(template)
    layout.install(out[BASE], releases.load_public(public), version=BASE)
    # as on a Pi, where the first release is installed by Debian's python3 (no pip of its own, so
    # its venv gets pip through ensurepip), the node's venv has pip for the next install
    subprocess.run(
        [str(layout.python(BASE)), "-m", "ensurepip", "--default-pip"], check=True, capture_output=True
    )
    switch_link(template, BASE)
    return Kit(
        key=releases.load_private(private),
        public_key_path=tmp / "release.pub",
        private_key_path=tmp / "release.key",
        bundles=out,
        template=template,
    )


def edge_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for table, values in data.items():
        if isinstance(values, list):
            for item in values:
                lines.append(f"[[{table}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in item.items()]
            continue
        lines.append(f"[{table}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


@dataclass
class SimNode:
    """A node on mock hardware running its releases as real processes; ``start`` plays systemd."""

    node_id: str
    root: Path
    config: Path
    starts: list[str] = field(default_factory=list)
    started_at: list[float] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    def start(self) -> SimNode:
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, name=f"systemd-{self.node_id}", daemon=True)
        self._thread.start()
        return self

    def _supervise(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "COV"))}
        env["PYTHONUNBUFFERED"] = "1"
        log_path = self.root / "agent.log"
        while not self._stop.is_set():
            guard = self.root / "guard"
            with log_path.open("ab") as out:
                if guard.exists():  # ExecStartPre
                    subprocess.run([str(guard)], stdout=out, stderr=out, env=env, check=False, timeout=60)
                version = self.layout.current or "?"
                self.starts.append(version)
                self.started_at.append(time.time())
                self._proc = subprocess.Popen(
                    [
                        str(self.root / "current" / "venv" / "bin" / "python"),
                        "-m",
                        "thanthien.cli",
                        "edge",
                        "run",
                        "--config",
                        str(self.config),
                    ],
                    stdout=out,
                    stderr=out,
                    env=env,
                    cwd=self.root,
                )
                code = self._proc.wait()
            self.exits.append(code)
            self._stop.wait(0.2)  # RestartSec

    def stop(self) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._thread is not None:
            self._thread.join(20)

    def log(self) -> str:
        path = self.root / "agent.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def make_node(
    kit: Kit,
    base: Path,
    node_id: str,
    *,
    port: int,
    password: str,
    hub_url: str,
    token: str,
    health_window_s: float = 2.0,
    speaker: bool = False,
    margin_s: float = 300.0,
) -> SimNode:
    root = base / node_id
    shutil.copytree(kit.template, root, symlinks=True)
    data_dir = root / "data"
    data: dict[str, Any] = {
        "node": {"id": node_id, "hardware": "mock", "data_dir": str(data_dir)},
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "password": password,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "keepalive_s": 5,
        },
        "hub": {"url": hub_url, "media_token": token},
        "update": {
            "root": str(root),
            "public_key": str(kit.public_key_path),
            "health_window_s": health_window_s,
            "broadcast_margin_s": margin_s,
            "max_starts": 3,
        },
        "audio": {"output": "wav", "wav_dir": str(root / "audio"), "realtime": True},
        "telemetry": {"interval_s": 30},
    }
    if speaker:
        data["speakers"] = {"warmup_s": 0.0, "relay_off_delay_s": 0.0, "max_delay_s": 30.0}
    else:
        data["rating_boxes"] = [
            {"id": "box-1", "counter": "quay-1", "bounce_ms": 1, "response_interval_s": 0}
        ]
    config = root / "edge.toml"
    config.write_text(edge_toml(data))
    return SimNode(node_id=node_id, root=root, config=config)
