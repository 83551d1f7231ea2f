"""Which hub process does what only one may do, on PostgreSQL: PostgreSQL advisory locks.

Several hub processes share one PostgreSQL database (N API processes, N ingest workers). Two
things must be done by exactly one of them at a time:

``scheduler``
    the jobs (delivery checks, alarms, plans, SMS, ...): two schedulers would check an
    occurrence twice or hand a text to the gateway twice.
``retained-state``
    the retained node states and camera health: they are not shared by an MQTT v5 shared
    subscription, every worker would get each of them, and two workers applying the same
    transitions at their own pace replay history (an ``online`` applied after the ``lost`` that
    followed it raises the offline alarm a second time, two camera periods open at once).

A :class:`Lease` is one session-level advisory lock (``pg_try_advisory_lock``) held on a
dedicated connection for as long as the process holds the role: the server releases it when
that session ends, so a process that dies (SIGKILL, power cut: the kernel closes its socket)
frees it at once, and one cut off from the server frees it once the server's TCP keepalives
give up on it (set on the session, about 15 s). An :class:`Election` tries every
``retry_s`` seconds: the process that gets the lock takes the role, the others keep trying.
The holder checks the lock on its connection at every try as well (a session lock ends only
with its session, so an answer on that connection proves it) and gives the role up the moment
the answer is no or does not come.

The locks live in one database (two hubs on one server but in two databases never meet, and
:meth:`Lease.holder` looks only at this database's locks in ``pg_locks``), under
the key pair (:data:`NAMESPACE`, role number): ``pg_locks`` shows them as ``classid`` 1414021454,
``objid`` 1, 2 or 3, and ``pg_stat_activity.application_name`` of the holder names the process
(:meth:`Lease.holder`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

NAMESPACE = 0x5448414E
"""The first key of every lock of the hub ("THAN"; ``pg_locks.classid``)."""
ROLES = {"scheduler": 1, "retained-state": 2, "start-up": 3}
"""The second key (``pg_locks.objid``) of each lock."""

ELECTION_RETRY_S = 5.0
"""How often a process that does not hold a role tries to take it, and the holder checks it
still holds it: a dead holder is replaced within this plus the new holder's start."""

_THIS_DATABASE = "l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
"""Advisory locks are per database, but ``pg_locks`` lists those of every database on the server: a
hub on another database of the same server holding its own lock is not this hub's holder."""
_LOCK_ROW = ("l.locktype = 'advisory' AND l.classid = CAST(%(ns)s AS integer)::oid "
             "AND l.objid = CAST(%(key)s AS integer)::oid AND l.objsubid = 2 AND l.granted "
             f"AND {_THIS_DATABASE}")
_HELD = f"SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE {_LOCK_ROW} AND l.pid = pg_backend_pid())"
_HOLDER = (f"SELECT a.application_name, l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
           f"WHERE {_LOCK_ROW}")
_FENCE = ("SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' "
          "AND l.classid = CAST(:ns AS integer)::oid AND l.objid = CAST(:key AS integer)::oid "
          f"AND l.objsubid = 2 AND l.granted AND l.pid = :pid AND {_THIS_DATABASE})")
_SESSION_SETTINGS = (
    "SET statement_timeout = '10s'",
    "SET idle_session_timeout = 0",  # a server-wide idle timeout must not end the lock's session
    "SET tcp_keepalives_idle = 5",  # the server gives up on a client cut off after ~15 s
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 5",
)


class Fenced(RuntimeError):
    """This process no longer holds the lock its work needs: the work is rolled back."""


def process_label(role: str) -> str:
    """The ``application_name`` of a lock's session: the role, the host and the process id."""
    return f"thanthien-hub {role} {socket.gethostname()}:{os.getpid()}"[:63]


def _conninfo(url: str | URL) -> str:
    """The libpq connection string of a SQLAlchemy URL (``postgresql+psycopg://…``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Lease:
    """One advisory lock of this process, on a connection of its own (see the module)."""

    def __init__(self, url: str | URL, role: str, *, label: str | None = None,
                 connect_timeout_s: float = 5.0) -> None:
        self.role = role
        self.key = ROLES[role]
        self.label = label or process_label(role)
        self._conninfo = _conninfo(url)
        self._connect_timeout = max(1, int(connect_timeout_s))
        self._conn: Any = None  # psycopg.Connection, imported lazily (SQLite hubs never load it)
        self._mutex = threading.Lock()
        self.backend_pid: int | None = None
        """The server process of the lock's session while this process holds the lock."""

    def _params(self) -> dict[str, int]:
        return {"ns": NAMESPACE, "key": self.key}

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=self._connect_timeout,
                                   application_name=self.label, keepalives=1, keepalives_idle=5,
                                   keepalives_interval=2, keepalives_count=3)
            for statement in _SESSION_SETTINGS:
                try:
                    conn.execute(statement)
                except psycopg.Error as exc:  # an older server without the setting
                    log.debug("lock session: %s refused: %s", statement, exc)
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        self.backend_pid = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def acquire(self) -> bool:
        """Take the lock if it is free (never waits); True when this process holds it."""
        import psycopg

        with self._mutex:
            try:
                conn = self._connection()
                row = conn.execute("SELECT pg_try_advisory_lock(%(ns)s, %(key)s)", self._params()).fetchone()
            except psycopg.Error as exc:
                log.warning("%s lock: database not reachable: %s", self.role, str(exc).strip()[:200])
                self._drop()
                return False
            if row and row[0]:
                self.backend_pid = conn.info.backend_pid
                return True
            return False

    def acquire_waiting(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the lock (the start-up lock: one process at a time)."""
        import psycopg

        with self._mutex:
            try:
                conn = self._connection()
                conn.execute(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'")
                conn.execute(f"SET statement_timeout = '{int(timeout_s * 1000) + 1000}ms'")
                conn.execute("SELECT pg_advisory_lock(%(ns)s, %(key)s)", self._params())
            except psycopg.Error as exc:
                log.warning("%s lock not taken: %s", self.role, str(exc).strip()[:200])
                self._drop()
                return False
            self.backend_pid = conn.info.backend_pid
            return True

    def held(self) -> bool:
        """Whether this process still holds the lock, asked of the server on the lock's own
        connection; no answer (connection gone, server down) is a no."""
        import psycopg

        with self._mutex:
            if self._conn is None or self.backend_pid is None:
                return False
            try:
                row = self._conn.execute(_HELD, self._params()).fetchone()
            except psycopg.Error as exc:
                log.warning("%s lock: its connection failed: %s", self.role, str(exc).strip()[:200])
                self._drop()
                return False
            if not (row and row[0]):
                self.backend_pid = None
                return False
            return True

    def holder(self) -> str | None:
        """Who holds the lock now (the holder's ``application_name``, see
        :func:`process_label`), or None when nobody does or the server does not answer."""
        import psycopg

        with self._mutex:
            try:
                row = self._connection().execute(_HOLDER, self._params()).fetchone()
            except psycopg.Error:
                self._drop()
                return None
        if row is None:
            return None
        return str(row[0] or f"server process {row[1]}")

    def verify(self, session: Session) -> None:
        """Raise :class:`Fenced` unless this process holds the lock, asked inside the
        session's own transaction (the work's commit follows at once)."""
        pid = self.backend_pid
        held = pid is not None and session.execute(
            text(_FENCE), {"ns": NAMESPACE, "key": self.key, "pid": pid}).scalar()
        if not held:
            raise Fenced(f"this process no longer holds the {self.role} lock; its work is rolled back")

    def release(self) -> None:
        """Give the lock up and close its connection."""
        import psycopg

        with self._mutex:
            if self._conn is not None and self.backend_pid is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute("SELECT pg_advisory_unlock(%(ns)s, %(key)s)", self._params())
            self._drop()


@contextlib.contextmanager
def one_at_a_time(url: str | URL, role: str = "start-up", timeout_s: float = 300.0) -> Iterator[bool]:
    """Hold a lock for the block, waiting for it (migrations and registry declarations at
    start-up: processes started together do them one after the other). Yields whether the lock
    was taken; without it the block runs all the same (as a single process would)."""
    lease = Lease(url, role)
    taken = lease.acquire_waiting(timeout_s)
    try:
        yield taken
    finally:
        lease.release()


class Election:
    """Keeps trying to take a :class:`Lease`; ``on_gain`` runs when this process took it,
    ``on_loss`` when it lost it (or at :meth:`stop`), both on the election's thread."""

    def __init__(self, lease: Lease, *, on_gain: Callable[[], None], on_loss: Callable[[], None],
                 retry_s: float = ELECTION_RETRY_S) -> None:
        self.lease = lease
        self.retry_s = retry_s
        self._on_gain = on_gain
        self._on_loss = on_loss
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._step_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.leading = False
        self.since: datetime | None = None
        """When this process took the role (or last gave it up)."""
        self.changes = 0

    def start(self) -> bool:
        """Try once now (so a lone process has its role when ``start`` returns), then keep
        trying in the background; True when this process took the role now."""
        self.step()
        self._thread = threading.Thread(target=self._run, name=f"election-{self.lease.role}", daemon=True)
        self._thread.start()
        return self.leading

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Check now (a job found the lock gone)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.retry_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.step()
            except Exception:
                log.exception("%s election failed; trying again", self.lease.role)

    def step(self) -> None:
        with self._step_lock:
            if self._stop.is_set():
                return
            if self.leading:
                if not self.lease.held():
                    log.error("this process lost the %s lock: it stops doing that work", self.lease.role)
                    self._lose()
            elif self.lease.acquire():
                self.leading, self.since = True, datetime.now(UTC)
                self.changes += 1
                try:
                    self._on_gain()
                except Exception:
                    log.exception("taking the %s role failed; giving the lock back", self.lease.role)
                    self._lose()

    def _lose(self) -> None:
        self.leading, self.since = False, datetime.now(UTC)
        self.changes += 1
        self.lease.release()  # a connection kept after a failure might still hold it
        try:
            self._on_loss()
        except Exception:
            log.exception("giving up the %s role failed", self.lease.role)

    def stop_trying(self) -> None:
        """No more tries or checks; the role, if held, stays until :meth:`stop` (so its work
        ends before the lock goes back)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)

    def stop(self) -> None:
        """Give the role up (``on_loss``) and the lock back; stop trying."""
        self.stop_trying()
        with self._step_lock:
            leading, self.leading = self.leading, False
            try:
                if leading:
                    self._on_loss()
            finally:
                self.lease.release()

    def status(self) -> dict[str, Any]:
        """For /healthz: whether this process holds the role, since when, and who holds it."""
        return {"this_process": self.leading, "election": "postgresql advisory lock",
                "since": self.since.isoformat() if self.since else None,
                "holder": self.lease.label if self.leading else self.lease.holder()}
