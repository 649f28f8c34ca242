"""Postgres bulk writes, written once for the edge store and the cloud worker's store.

- COPY's text format: ``copy_field`` / ``copy_bytes`` escape a value (backslash, tab, newline,
  carriage return); NULL is ``NULL``;
- ``stage_and_merge``: COPY rows into a temporary staging table (``ON COMMIT DELETE ROWS``),
  then one statement merges them (``INSERT ... SELECT ... ON CONFLICT``), in the caller's
  transaction;
- the error split: ``TRANSIENT_ERRORS`` (the database is away: retry the same batch later) and
  ``DATA_ERRORS`` (this data cannot be stored: split the batch, dead-letter what is refused).
  Check ``TRANSIENT_ERRORS`` first: an ``OperationalError`` is a ``StatementError`` too.
"""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = (b"\\", b"\n", b"\r", b"\t")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
DATA_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.DataError,
    sa_exc.IntegrityError,
    sa_exc.StatementError,  # e.g. a value the driver cannot encode (checked after TRANSIENT)
    psycopg.DataError,
    psycopg.IntegrityError,
    UnicodeError,
)
CONFLICT_ERRORS: tuple[type[BaseException], ...] = (sa_exc.IntegrityError, psycopg.IntegrityError)


def copy_field(text: str) -> str:
    """A value in COPY's text format (backslash, tab, newline, CR escaped)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


def needs_escape(data: bytes) -> bool:
    """Whether ``data`` holds a byte COPY treats specially (compact JSON never does)."""
    return any(c in data for c in _SPECIAL)


def copy_bytes(b: bytes) -> bytes:
    """``copy_field`` for bytes."""
    return (
        b.replace(b"\\", b"\\\\")
        .replace(b"\n", b"\\n")
        .replace(b"\r", b"\\r")
        .replace(b"\t", b"\\t")
    )


def driver(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy connection (for COPY)."""
    raw: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    return raw


def copy_in(cur: psycopg.Cursor[Any], sql: str, data: str | bytes) -> None:
    """One ``COPY ... FROM STDIN`` of ``data`` (rows already in COPY's text format)."""
    with cur.copy(sql) as copy:
        copy.write(data)


def stage_and_merge(
    cur: psycopg.Cursor[Any],
    stage_ddl: str,
    stage_copy: str,
    data: str | bytes,
    merge_sql: str,
    params: dict[str, Any] | None = None,
) -> None:
    """COPY ``data`` into the staging table ``stage_ddl`` creates (once per session; it empties
    at commit), then run ``merge_sql``; the caller reads its rowcount or result."""
    cur.execute(stage_ddl)
    copy_in(cur, stage_copy, data)
    cur.execute(merge_sql, params)
