"""Many rows in one go through the database driver, for the ingest's hot writes (ratings, telemetry,
playback reports and the deliveries they move).

SQLAlchemy spends more on each row's parameters than the database spends storing it (building and
processing a parameter set per row, a type processor call per value: about half of an ingest
batch's CPU before this). The ingest hands the rows to the driver of the session's own connection,
inside the session's transaction:

- SQLite (``sqlite3``): plain tuples made here in the form SQLAlchemy would store them
  (:func:`sqlite_params`; tests compare both column by column), ``executemany`` or statements of
  many rows;
- PostgreSQL (psycopg): one statement whatever the number of rows, one array per column
  (``INSERT … SELECT … FROM unnest(%s::type[], …)``), which psycopg adapts in C (aware datetimes
  as ``timestamptz``, UUIDs as ``uuid``: what SQLAlchemy sends for these columns too).

:func:`insert` and :func:`insert_new` choose by the session's dialect.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Date, Float, Table, Uuid
from sqlalchemy.orm import Session

from thanthien.hub.db.models import UtcDateTime

SQLITE_MAX_PARAMS = 32_766
"""SQLite's limit on the parameters of one statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32)."""


def _utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    v = value.astimezone(UTC)
    return (f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"
            f".{v.microsecond:06d}")


def _date_text(value: date | None) -> str | None:
    return None if value is None else f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _uuid_hex(value: UUID | None) -> str | None:
    return None if value is None else value.hex


def _bool_int(value: bool | None) -> int | None:
    return None if value is None else int(bool(value))


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _converter(column: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """What turns a value into what SQLite stores for ``column`` (None: the value as it is)."""
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return _utc_text
    if isinstance(kind, Uuid) and kind.as_uuid:  # SQLite has no uuid type: 32 hex digits
        return _uuid_hex
    if isinstance(kind, Boolean):
        return _bool_int
    if type(kind) is Date:
        return _date_text
    if isinstance(kind, Float):
        return _float
    return kind._cached_bind_processor(dialect)  # any other type: SQLAlchemy's own processing


def sqlite_params(session: Session, table: Table, names: Sequence[str],
                  rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows as parameter tuples in the order of ``names``, each value as SQLite stores it."""
    dialect = session.get_bind().dialect
    converters = [_converter(table.c[name], dialect) for name in names]
    plain = [i for i, c in enumerate(converters) if c is None]
    if len(plain) == len(names):
        return [tuple(row[name] for name in names) for row in rows]
    pairs = list(zip(names, converters, strict=True))
    return [tuple(row[name] if convert is None else convert(row[name]) for name, convert in pairs)
            for row in rows]


def _autoflush(session: Session) -> None:
    """What ``session.execute`` does first: the session's pending changes are written before a
    statement of ours (unless the caller is inside ``no_autoflush``, as the ingest handlers are)."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()


def _driver(session: Session) -> Any:
    """The driver's connection under the session's transaction (begun if not yet), flushed first."""
    _autoflush(session)
    return session.connection().connection.driver_connection  # type: ignore[union-attr]


def _cursor(session: Session) -> Any:
    """A cursor of the sqlite3 connection under the session's transaction."""
    return _driver(session).cursor()


def sqlite_insert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT the rows (dicts with the same keys) into ``table``: one ``executemany`` in the driver."""
    if not rows:
        return
    names = list(rows[0])
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) "
           f"VALUES ({', '.join('?' * len(names))})")
    cursor = _cursor(session)
    try:
        cursor.executemany(sql, sqlite_params(session, table, names, rows))
    finally:
        cursor.close()


def sqlite_insert_new(session: Session, table: Table, rows: Sequence[Mapping[str, Any]],
                      unique: Sequence[str]) -> list[tuple[Any, ...]]:
    """INSERT … ON CONFLICT (``unique``) DO NOTHING RETURNING ``unique``: the rows not stored yet go
    in, and the keys of those (as SQLite stores them) come back; a few statements of many rows."""
    if not rows:
        return []
    names = list(rows[0])
    params = sqlite_params(session, table, names, rows)
    per_statement = max(1, SQLITE_MAX_PARAMS // len(names))
    one = f"({', '.join('?' * len(names))})"
    head = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "
    tail = f" ON CONFLICT ({', '.join(unique)}) DO NOTHING RETURNING {', '.join(unique)}"
    cursor = _cursor(session)
    inserted: list[tuple[Any, ...]] = []
    try:
        for start in range(0, len(params), per_statement):
            chunk = params[start:start + per_statement]
            cursor.execute(head + ", ".join([one] * len(chunk)) + tail, [v for row in chunk for v in row])
            inserted.extend(tuple(r) for r in cursor.fetchall())
    finally:
        cursor.close()
    return inserted


_UNNEST: dict[tuple[str, tuple[str, ...]], str] = {}


def _pg_unnest(session: Session, table: Table, names: Sequence[str]) -> str:
    """``INSERT INTO table (names) SELECT * FROM unnest(%s::type[], …)`` (made once per table and
    columns: compiling the types is not free)."""
    key = (table.name, tuple(names))
    sql = _UNNEST.get(key)
    if sql is None:
        dialect = session.get_bind().dialect
        casts = ", ".join(f"%s::{table.c[name].type.compile(dialect=dialect)}[]" for name in names)
        sql = _UNNEST[key] = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({casts})"
    return sql


def _pg_columns(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[list[Any]]:
    for name, column in zip(names, columns := [[row[name] for row in rows] for name in names], strict=True):
        if any(isinstance(v, datetime) and v.tzinfo is None for v in column):
            raise ValueError(f"naive datetime given to a UTC column ({name})")
    return columns


def insert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT the rows (dicts with the same keys) into ``table`` through the driver."""
    if not rows:
        return
    if session.get_bind().dialect.name == "sqlite":
        sqlite_insert(session, table, rows)
        return
    names = list(rows[0])
    with _driver(session).cursor() as cursor:
        cursor.execute(_pg_unnest(session, table, names), _pg_columns(rows, names))


def insert_new(session: Session, table: Table, rows: Sequence[Mapping[str, Any]],
               unique: Sequence[str]) -> set[tuple[Any, ...]]:
    """INSERT the rows not stored yet (ON CONFLICT on ``unique`` DO NOTHING); the ``unique`` keys of
    the rows this statement inserted, as the rows gave them (a row another transaction stored
    first is not among them)."""
    if not rows:
        return set()
    if session.get_bind().dialect.name == "sqlite":
        stored_as = sqlite_params(session, table, unique, rows)
        given = {key: tuple(row[k] for k in unique) for key, row in zip(stored_as, rows, strict=True)}
        return {given[key] for key in sqlite_insert_new(session, table, rows, unique)}
    names = list(rows[0])
    sql = (_pg_unnest(session, table, names)
           + f" ON CONFLICT ({', '.join(unique)}) DO NOTHING RETURNING {', '.join(unique)}")
    with _driver(session).cursor() as cursor:
        cursor.execute(sql, _pg_columns(rows, names))
        return {tuple(r) for r in cursor.fetchall()}


def update_by_id(session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *,
                 sets: Mapping[str, str] | None = None) -> None:
    """UPDATE rows of ``table`` by their ``id`` (dicts with the same keys, ``id`` among them),
    one ``executemany`` in the driver in the order given (on PostgreSQL psycopg sends it in one
    pipeline). Plain values only: a JSON column goes through SQLAlchemy.

    ``sets``: for some columns, the SQL of the new value instead of the given one, naming the
    given values ``:column`` and the stored ones by their column names (the row as it is when
    the UPDATE runs): so a write made from rows read earlier does not undo what another
    transaction committed since (PostgreSQL evaluates it on the row it waited for)."""
    if not rows:
        return
    names = [name for name in rows[0] if name != "id"]
    keys = [*names, "id"]
    assignments = ", ".join(f"{n} = {(sets or {}).get(n, f':{n}')}" for n in names)
    sql = f"UPDATE {table.name} SET {assignments} WHERE id = :id"
    if session.get_bind().dialect.name == "sqlite":
        cursor = _cursor(session)
        try:
            cursor.executemany(sql, [dict(zip(keys, values, strict=True))
                                     for values in sqlite_params(session, table, keys, rows)])
        finally:
            cursor.close()
        return
    params = [dict(zip(keys, values, strict=True)) for values in zip(*_pg_columns(rows, keys), strict=True)]
    with _driver(session).cursor() as cursor:
        cursor.executemany(re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql), params)


def upsert_sums(session: Session, table: Table, key: Sequence[str], sums: Sequence[str],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT the rows (values of ``key`` then of ``sums``, in that order) or, where a row of the key
    is there, add ``sums`` to it (``ON CONFLICT (key) DO UPDATE SET n = n + excluded.n``)."""
    if not rows:
        return
    names = [*key, *sums]
    conflict = (f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
                + ", ".join(f"{n} = {table.name}.{n} + excluded.{n}" for n in sums))
    if session.get_bind().dialect.name == "sqlite":
        params = sqlite_params(session, table, names, [dict(zip(names, row, strict=True)) for row in rows])
        cursor = _cursor(session)
        try:
            cursor.executemany(f"INSERT INTO {table.name} ({', '.join(names)}) "
                               f"VALUES ({', '.join('?' * len(names))})" + conflict, params)
        finally:
            cursor.close()
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    with _driver(session).cursor() as cursor:
        cursor.execute(_pg_unnest(session, table, names) + conflict, columns)
