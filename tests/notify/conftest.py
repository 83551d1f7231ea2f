"""Real peers for the notification tests: gammu-smsd with Gammu's dummy driver (a folder that
behaves like a phone), an SMSC (smpp34's SMPP server, tests/notify/smsc.py) and an SMTP server
(aiosmtpd), each on a free port or in the test's own folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from hub.conftest import _migrated, clock, ctx, db, db_url, pg_url  # noqa: F401  (the hub fixtures)

from support import EventCollector, wait_until
from thanthien.broker import free_port
from thanthien.hub.notify.gammu import prepare_spool, smsd_config
from thanthien.hub.notify.settings import GammuSettings, SmppSettings

HERE = Path(__file__).resolve().parent
GAMMU_SMSD = shutil.which("gammu-smsd")
GAMMU = shutil.which("gammu")


@dataclass
class Smsd:
    """gammu-smsd on the dummy driver; ``inject`` puts a text into the dummy phone's inbox with
    Gammu's own ``gammu savesms``, as if a citizen had sent it."""

    root: Path
    cfg: GammuSettings
    proc: subprocess.Popen[bytes] | None = None

    @property
    def rc(self) -> Path:
        return self.root / "smsdrc"

    def start(self) -> None:
        self.rc.write_text(smsd_config(self.cfg, log_file=self.root / "smsd.log"), encoding="utf-8")
        self.proc = subprocess.Popen(
            [GAMMU_SMSD, "-c", str(self.rc)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def inject(self, sender: str, text: str) -> None:
        gammurc = self.root / "gammurc"
        gammurc.write_text(
            f"[gammu]\ndevice = {self.cfg.device}\nmodel = dummy\nconnection = none\n", encoding="utf-8"
        )
        subprocess.run(
            [
                GAMMU,
                "-c",
                str(gammurc),
                "savesms",
                "TEXT",
                "-folder",
                "1",
                "-unread",
                "-sender",
                sender,
                "-text",
                text,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def folder(self, name: str) -> list[str]:
        assert self.cfg.spool_dir is not None
        return sorted(p.name for p in (self.cfg.spool_dir / name).iterdir())


@pytest.fixture
def gammu_cfg(tmp_path: Path) -> GammuSettings:
    if GAMMU_SMSD is None or GAMMU is None:
        pytest.skip(
            "gammu-smsd / gammu not installed (Debian packages gammu-smsd, gammu: scripts/system-deps.sh)"
        )
    device = tmp_path / "dummy-phone"
    device.mkdir()
    cfg = GammuSettings(spool_dir=tmp_path / "spool", device=str(device), connection="none", model="dummy")
    assert cfg.spool_dir is not None
    prepare_spool(cfg.spool_dir)
    return cfg


@pytest.fixture
def smsd(tmp_path: Path, gammu_cfg: GammuSettings) -> Iterator[Smsd]:
    daemon = Smsd(root=tmp_path, cfg=gammu_cfg)
    daemon.start()
    yield daemon
    daemon.stop()


@dataclass
class Smsc:
    root: Path
    port: int
    proc: subprocess.Popen[str] | None = None
    refuse: int = 0
    die_after: int = 0

    def exited(self, timeout: float = 10.0) -> bool:
        """The SMSC process ended by itself (``die_after``)."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        self.proc = None
        return True

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def mo_dir(self) -> Path:
        return self.root / "mo"

    def start(self) -> None:
        cmd = [
            sys.executable,
            str(HERE / "smsc.py"),
            "--port",
            str(self.port),
            "--ledger",
            str(self.ledger),
            "--mo-dir",
            str(self.mo_dir),
            "--refuse",
            str(self.refuse),
            "--die-after",
            str(self.die_after),
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("READY"), line

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def accepted(self) -> list[dict]:
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text(encoding="utf-8").splitlines() if line]

    def send_mo(self, sender: str, text: str) -> None:
        self.mo_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.mo_dir / f".{uuid.uuid4().hex}"
        tmp.write_text(json.dumps({"from": sender, "text": text}), encoding="utf-8")
        os.replace(tmp, tmp.with_name(tmp.name[1:] + ".json"))


@pytest.fixture
def smsc(tmp_path: Path) -> Iterator[Smsc]:
    server = Smsc(root=tmp_path / "smsc", port=free_port())
    server.root.mkdir()
    server.start()
    yield server
    server.kill()


def smpp_settings(port: int) -> SmppSettings:
    return SmppSettings(
        host="127.0.0.1", port=port, system_id="thanthien", password="secret", timeout_s=5, enquire_link_s=30
    )


@dataclass
class Mailbox:
    """An aiosmtpd server on a free port; the messages it received."""

    port: int
    received: EventCollector[Message] = field(default_factory=EventCollector)


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox(port=free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            box.received.add(message_from_bytes(envelope.content))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


def wait_files(folder: Path, n: int, timeout: float = 30.0) -> bool:
    return wait_until(lambda: len(list(folder.iterdir())) >= n, timeout=timeout)
