"""The engine and session factory: a SQLite file (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # a committed (and acked) rating survives a power cut
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    """Writers take SQLite's write lock at BEGIN (waiting up to busy_timeout), so a transaction
    that reads and then writes never fails on a lock upgrade; readers begin deferred."""
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


_CHANGES = "thanthien.changed"


def mark_changed(session: Session, topic: str) -> None:
    """Say that this unit of work changed ``topic`` (e.g. ``"broadcasts"``): once it commits,
    whoever follows the topic on the :class:`Database` is called (see :meth:`Database.follow`).
    A service marks what it changed, so no route has to remember the follow-up."""
    session.info.setdefault(_CHANGES, set()).add(topic)


class Database:
    """One engine for the process; ``session()`` gives a unit of work."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        self.engine: Engine = create_engine(self.url, **kwargs)
        reader = self.engine
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
            reader = self.engine.execution_options(sqlite_begin="DEFERRED")
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._read_factory = sessionmaker(reader, expire_on_commit=False)
        self._followers: dict[str, dict[Hashable, Callable[[], None]]] = {}
        event.listen(self._factory, "after_commit", self._after_commit)
        event.listen(self._factory, "after_soft_rollback", self._forget_changes)

    def follow(self, topic: str, key: Hashable, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every commit that marked ``topic`` changed; one callback per
        ``key`` (following again under the same key replaces it)."""
        self._followers.setdefault(topic, {})[key] = callback

    def unfollow(self, key: Hashable | None = None) -> None:
        """Stop one follower (``key``), or every follower (a database reused by another hub)."""
        if key is None:
            self._followers.clear()
        for followers in self._followers.values():
            followers.pop(key, None)

    def _after_commit(self, session: Session) -> None:
        for topic in sorted(session.info.pop(_CHANGES, ())):
            for callback in list(self._followers.get(topic, {}).values()):
                try:
                    callback()
                except Exception:  # committed already: a failed follow-up is logged, the next job retries
                    log.exception("follow-up of a %s change failed", topic)

    @staticmethod
    def _forget_changes(session: Session, _previous: Any) -> None:
        session.info.pop(_CHANGES, None)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back otherwise;
        ``write=False`` for read-only work (on SQLite it then takes no write lock)."""
        session = self.new_session(write=write)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def new_session(self, *, write: bool = True) -> Session:
        """A session the caller closes; ``write=False`` for read-only work (no write lock)."""
        return self._factory() if write else self._read_factory()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:  # any driver error means "not reachable" here
            log.warning("database ping failed: %s", exc)
            return False

    def migrate(self) -> None:
        from thanthien.hub.db.migrate import upgrade

        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
