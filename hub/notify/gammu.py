"""A GSM/3G USB modem through gammu-smsd and its FILES backend.

The hub hands a message over by writing it into gammu-smsd's outbox, named after the
message (``OUT<priority><date>_<time>_00_<number>_m<id>.txt``): the file is written aside and
renamed in (atomic), and ``find`` looks for that name in the outbox, sent and error folders,
so a hub that died between the rename and its commit hands the message over exactly once.
gammu-smsd sends it and moves it to ``sent`` (or ``error``): ``track``. Texts the modem
receives land in ``inbox`` as ``IN<date>_<time>_<serial>_<sender>_<part>.txt`` (UTF-16); each
is passed to the hub and then moved to ``processed``.

With ``run_smsd`` the hub starts gammu-smsd itself from a config it writes (``smsdrc``); the
demo does that with Gammu's dummy driver, a folder that behaves like a phone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

from thanthien.hub.notify.gateway import Accepted, GatewayError, Handler, Outgoing, Received, Report
from thanthien.hub.notify.settings import GammuSettings

log = logging.getLogger(__name__)

FOLDERS = ("inbox", "outbox", "sent", "error", "processed", "tmp")
INBOX_NAME = re.compile(r"^IN(\d{8})_(\d{6})_(\d+)_(.+)_(\d+)\.txt$")


def smsd_config(cfg: GammuSettings, *, log_file: Path | None = None) -> str:
    """A gammu-smsdrc for these settings (FILES backend, UTF-16 files, quick loops)."""
    assert cfg.spool_dir is not None
    spool = cfg.spool_dir.resolve()
    lines = ["[gammu]", f"device = {cfg.device}", f"connection = {cfg.connection}"]
    if cfg.model:
        lines.append(f"model = {cfg.model}")
    lines += [
        "",
        "[smsd]",
        "service = files",
        f"logfile = {log_file or spool / 'smsd.log'}",
        "debuglevel = 0",
        f"inboxpath = {spool / 'inbox'}/",
        f"outboxpath = {spool / 'outbox'}/",
        f"sentsmspath = {spool / 'sent'}/",
        f"errorsmspath = {spool / 'error'}/",
        "inboxformat = unicode",
        "outboxformat = unicode",
        "transmitformat = auto",
        "receivefrequency = 1",
        "statusfrequency = 0",
        "loopsleep = 1",
        "commtimeout = 1",
        "sendtimeout = 10",
        "checksecurity = 0",
        "checkbattery = 0",
        "checksignal = 0",
        "hangupcalls = 0",
        "phoneid = thanthien",
        "",
    ]
    return "\n".join(lines)


def _die_with_parent() -> None:
    """In the child before exec: gammu-smsd gets SIGTERM when the hub process dies (Linux), so a
    hub killed hard leaves no daemon behind; a clean stop terminates it in ``close``."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def prepare_spool(spool: Path) -> None:
    for name in FOLDERS:
        (spool / name).mkdir(parents=True, exist_ok=True)


class GammuGateway:
    name = "gammu"
    carries_brand = False

    def __init__(self, cfg: GammuSettings) -> None:
        if cfg.spool_dir is None:
            raise ValueError("sms.gammu.spool_dir is not resolved")
        self.cfg = cfg
        self.spool = cfg.spool_dir
        prepare_spool(self.spool)
        self._smsd: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._start_failed = False
        self._closed = False

    # -- the daemon (run_smsd) -------------------------------------------------------------
    def ensure_smsd(self) -> None:
        """Start gammu-smsd (again) when the hub runs it and it is not running."""
        if not self.cfg.run_smsd:
            return
        with self._lock:
            if self._closed or (self._smsd is not None and self._smsd.poll() is None):
                return
            if self._smsd is not None:
                log.warning("gammu-smsd exited with %s; starting it again", self._smsd.returncode)
            rc = self.spool / "smsdrc"
            rc.write_text(smsd_config(self.cfg), encoding="utf-8")
            if self.cfg.device and not self.cfg.device.startswith("/dev/"):
                Path(self.cfg.device).mkdir(parents=True, exist_ok=True)
            try:
                self._smsd = subprocess.Popen(
                    [self.cfg.smsd_binary, "-c", str(rc)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                self._smsd = None
                if not self._start_failed:
                    log.error("gammu-smsd could not start (%s); messages wait in its outbox", exc)
                self._start_failed = True
                return
            log.info("gammu-smsd started (pid %d, device %s)", self._smsd.pid, self.cfg.device)

    # -- hand-over -------------------------------------------------------------------------
    def _named(self, msg_id: int) -> tuple[str, str] | None:
        suffix = f"_m{msg_id}.txt"
        for folder in ("outbox", "sent", "error"):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(self.spool / folder):
                    if entry.name.endswith(suffix):
                        return folder, entry.name
        return None

    def find(self, msg_id: int) -> Accepted | None:
        found = self._named(msg_id)
        if found is None:
            return None
        folder, name = found
        return Accepted(ref=name, state="sent" if folder == "sent" else "handed")

    def submit(self, msg: Outgoing) -> Accepted:
        earlier = self.find(msg.id)
        if earlier is not None:
            return earlier
        stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        name = f"OUT{'A' if msg.urgent else 'C'}{stamp}_00_{msg.phone}_m{msg.id}.txt"
        tmp = self.spool / "tmp" / f"{name}.part"
        try:
            with open(tmp, "wb") as f:
                f.write(msg.body.encode("utf-16"))  # with a byte-order mark: outboxformat = unicode
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.spool / "outbox" / name)
            fd = os.open(self.spool / "outbox", os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise GatewayError(f"gammu-smsd outbox not writable: {exc}", retry=True) from exc
        return Accepted(ref=name, state="handed")

    def track(self, refs: list[str]) -> list[Report]:
        out = []
        for ref in refs:
            for folder, status in (("sent", "sent"), ("error", "failed")):
                path = self.spool / folder / ref
                if path.exists():
                    at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                    out.append(
                        Report(
                            ref=ref,
                            status=status,
                            at=at,  # type: ignore[arg-type]
                            raw=f"gammu-smsd: {folder}",
                        )
                    )
        return out

    # -- what the modem received ----------------------------------------------------------
    def receive(self, handle: Handler) -> int:
        n = 0
        with contextlib.suppress(FileNotFoundError):
            names = sorted(e.name for e in os.scandir(self.spool / "inbox") if e.name.startswith("IN"))
            for name in names:
                match = INBOX_NAME.match(name)
                path = self.spool / "inbox" / name
                if match is None:
                    log.warning("gammu inbox: %s is no text message; moved aside", name)
                    os.replace(path, self.spool / "processed" / name)
                    continue
                day, time_, _serial, sender, _part = match.groups()
                at = datetime.strptime(day + time_, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
                raw = path.read_bytes()
                text = (
                    raw.decode("utf-16")
                    if raw[:2] in (b"\xff\xfe", b"\xfe\xff")
                    else raw.decode("utf-8", "replace")
                )
                handle(Received(ref=name, sender=sender, text=text, at=at))
                os.replace(path, self.spool / "processed" / name)  # only after the hub committed it
                n += 1
        return n

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._smsd is not None and self._smsd.poll() is None:
                self._smsd.terminate()
                try:
                    self._smsd.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._smsd.kill()
                    self._smsd.wait(timeout=10)
            self._smsd = None
