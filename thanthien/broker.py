"""A private Mosquitto with the project's config: used by `thanthien broker`, the demo and
the test harness.

The config and ACL templates live in config/mosquitto/; they are rendered into the
broker's data directory together with the password file and the persistence database.
"""

from __future__ import annotations

import base64
import fcntl
import getpass
import hashlib
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from thanthien.paths import CONFIG_DIR
from thanthien.protocol import DEFAULT_ROOT

log = logging.getLogger(__name__)

TEMPLATE_DIR = CONFIG_DIR / "mosquitto"
READY_MARK = " running"


class BrokerError(RuntimeError):
    pass


_random = random.SystemRandom()
_LOWEST_PORT = 10_000


def _ephemeral_start() -> int:
    """The first port of the kernel's range for outgoing connections (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now, below the kernel's range for outgoing
    connections: a port from that range (what binding to port 0 gives) can be taken by any
    process's next outgoing connection before the caller binds it, and a broker or a hub then
    failed to start with "address already in use" (seen in the test suite, where thousands of
    connections come and go)."""
    top = _ephemeral_start()
    for _ in range(200):
        port = _random.randrange(_LOWEST_PORT, top) if top > _LOWEST_PORT + 1000 else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError(f"no free TCP port on {host} below {top}")


def _require(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if path is None:
        raise BrokerError(f"{tool} not found: install the Debian packages mosquitto and "
                          "mosquitto-clients (make setup does it when run as root)")
    return path


def set_password(passwd_file: Path, username: str, password: str) -> None:
    """Add or replace one user in a Mosquitto password file, with ``mosquitto_passwd``."""
    tool = _require("mosquitto_passwd")
    args = [tool, "-b", str(passwd_file), username, password]
    if not passwd_file.exists() or passwd_file.stat().st_size == 0:
        args.insert(1, "-c")
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BrokerError(f"mosquitto_passwd failed for {username!r}: {proc.stderr.strip()}")


MOSQUITTO_PBKDF2_ITERATIONS = 101


def mosquitto_hash(password: str, *, salt: bytes | None = None) -> str:
    """A Mosquitto 2.0 password hash: ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>``
    (what ``mosquitto_passwd`` writes: 12-byte salt, 64-byte hash, 101 iterations)."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_PBKDF2_ITERATIONS, 64)
    return (f"$7${MOSQUITTO_PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def set_passwords(passwd_file: Path, users: dict[str, str]) -> None:
    """Add or replace many users at once (one process per user with ``mosquitto_passwd`` is
    too slow for a fleet of hundreds); other users in the file are kept. Written atomically."""
    set_hashes(passwd_file, {name: mosquitto_hash(password) for name, password in users.items()})


def set_hashes(passwd_file: Path, users: dict[str, str | None]) -> None:
    """Set users to these Mosquitto hashes (:func:`mosquitto_hash`), removing those mapped to
    ``None``; every other user in the file is kept. Read, changed and replaced atomically under
    a lock (the hub and ``thanthien broker`` may both write the file)."""
    bad = [u for u in users if not u or ":" in u or any(c.isspace() for c in u)]
    if bad:
        raise BrokerError(f"invalid broker user name(s): {', '.join(map(repr, bad))}")
    passwd_file.parent.mkdir(parents=True, exist_ok=True)
    with _locked(passwd_file):
        lines: dict[str, str] = {}
        if passwd_file.exists():
            for line in passwd_file.read_text(encoding="utf-8").splitlines():
                name, sep, _hash = line.partition(":")
                if sep:
                    lines[name] = line
        for name, digest in users.items():
            if digest is None:
                lines.pop(name, None)
            else:
                lines[name] = f"{name}:{digest}"
        tmp = passwd_file.with_name(passwd_file.name + ".tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines.values()), encoding="utf-8")
        tmp.chmod(0o600)
        os.replace(tmp, passwd_file)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def users_in(passwd_file: Path) -> set[str]:
    """The user names of a password file (none when it does not exist)."""
    if not passwd_file.exists():
        return set()
    return {line.partition(":")[0] for line in passwd_file.read_text(encoding="utf-8").splitlines()
            if ":" in line}


@dataclass(frozen=True)
class BrokerTls:
    """A TLS listener: the deployment CA and the broker's certificate (thanthien.pki)."""

    ca: Path
    cert: Path
    key: Path
    port: int = 8883
    bind: str = "0.0.0.0"
    client_certs: bool = True
    """True: nodes authenticate with certificates; False: TLS plus the password file."""
    crl: Path | None = None
    """The deployment CA's revocation list (``thanthien.pki.write_crl``): a revoked node
    certificate is refused at its next connect (Mosquitto reads it again on SIGHUP)."""


class Broker:
    """One Mosquitto process bound to loopback (or ``bind``) with the project's config,
    plus an optional TLS listener for the field."""

    def __init__(self, data_dir: Path | str, *, port: int = 0, bind: str = "127.0.0.1",
                 root: str = DEFAULT_ROOT, hub_user: str = "hub",
                 tls: BrokerTls | None = None, own_session: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.own_session = own_session
        """Start Mosquitto in its own session, so a terminal's Ctrl-C reaches only the parent,
        which then stops it in order (the demo stops its nodes before their broker)."""
        self.tls = tls
        self.bind = bind
        self.port = port or free_port(bind)
        self.root = root
        self.hub_user = hub_user
        self._proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._tail: deque[str] = deque(maxlen=50)
        self._reader: threading.Thread | None = None

    @property
    def conf_path(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    @property
    def passwd_path(self) -> Path:
        return self.data_dir / "passwd"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def prepare(self) -> None:
        """Render mosquitto.conf and the ACL into the data directory."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        values = {"data_dir": str(self.data_dir), "port": self.port, "bind": self.bind,
                  "user": getpass.getuser(), "root": self.root, "hub_user": self.hub_user}
        for name, target in (("mosquitto.conf.template", self.conf_path),
                             ("acl.template", self.data_dir / "acl")):
            text = (TEMPLATE_DIR / name).read_text(encoding="utf-8").format(**values)
            if name.startswith("mosquitto") and self.tls is not None:
                text += self._tls_block()
            target.write_text(text, encoding="utf-8")
        self.passwd_path.touch(mode=0o600, exist_ok=True)

    def _tls_block(self) -> str:
        assert self.tls is not None
        t = self.tls
        template = (TEMPLATE_DIR / "tls-listener.conf.template").read_text(encoding="utf-8")
        text = template.format(tls_port=t.port, tls_bind=t.bind, ca=t.ca.resolve(),
                               cert=t.cert.resolve(), key=t.key.resolve(),
                               client_certs=str(t.client_certs).lower())
        if t.crl is not None:
            text += f"crlfile {t.crl.resolve()}\n"
        return text

    def add_user(self, username: str, password: str) -> None:
        """Create or update a broker user; a running broker reloads its password file."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        set_password(self.passwd_path, username, password)
        if self.running:
            self.reload()

    def add_users(self, users: dict[str, str]) -> None:
        """Create or update many users in one write (:func:`set_passwords`); a running broker
        reloads its password file."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        set_passwords(self.passwd_path, users)
        if self.running:
            self.reload()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        self.prepare()
        self._ready.clear()
        self._proc = subprocess.Popen(
            [_require("mosquitto"), "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", start_new_session=self.own_session,
        )
        (self.data_dir / "mosquitto.pid").write_text(str(self._proc.pid))
        self._reader = threading.Thread(target=self._read_output, args=(self._proc,),
                                        name="mosquitto-log", daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout):
            tail = "\n".join(self._tail)
            self.kill()
            raise BrokerError(f"mosquitto did not start within {timeout} s:\n{tail}")
        if not self.running:
            raise BrokerError("mosquitto exited at start:\n" + "\n".join(self._tail))
        log.info("broker listening on %s:%d (data %s)", self.bind, self.port, self.data_dir)

    def _read_output(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with self.log_path.open("a", encoding="utf-8") as logfile:
            for line in proc.stdout:
                logfile.write(line)
                logfile.flush()
                self._tail.append(line.rstrip())
                if READY_MARK in line and "mosquitto version" in line:
                    self._ready.set()
        self._ready.set()  # exited: wake a waiting start() so it can report

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password file and ACL."""
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (Mosquitto saves its persistence database). Safe twice."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._finish()

    def kill(self) -> None:
        """SIGKILL, as a power cut would: no persistence save."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._finish()

    def _finish(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._proc = None
        self._reader = None
        pidfile = self.data_dir / "mosquitto.pid"
        if pidfile.exists():
            pidfile.unlink()

    def wait(self) -> int:
        """Block until the broker exits (for the foreground command)."""
        assert self._proc is not None
        return self._proc.wait()

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def reload_running(data_dir: Path) -> bool:
    """Tell a broker started by `thanthien broker` in ``data_dir`` to reload its users."""
    pidfile = data_dir / "mosquitto.pid"
    try:
        os.kill(int(pidfile.read_text()), signal.SIGHUP)
    except (OSError, ValueError):
        return False
    return True
