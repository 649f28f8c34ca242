"""Query parameters that need more than a type: times, buckets, cursors, ids.

Times (``since``, ``until``) take an RFC 3339 string (``2026-11-22T10:00:00Z``; no zone means
UTC), epoch seconds (``1795000000.5``) or a time relative to now (``-15m``, ``-2h``, ``-7d``).
Anything else is a 400 with the parameter named, never a 5xx.

Cursors are opaque to clients: base64url JSON of the last row's sort key.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from edgecloud.cloud.api.errors import BadRequest, NotFound

_MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TS = datetime(9000, 1, 1, tzinfo=UTC)
_RELATIVE = re.compile(r"^-(\d{1,9})(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_BUCKET = re.compile(r"^(\d{1,5})(m|h|d)$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_BUCKET_MINUTES = 7 * 24 * 60


def parse_time(value: str | None, name: str, now: datetime | None = None) -> datetime | None:
    if value is None or value == "":
        return None
    text = value.strip()
    now = now or datetime.now(UTC)
    try:
        if m := _RELATIVE.match(text):
            ts = now - timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
        elif re.fullmatch(r"\d{1,12}(\.\d{1,9})?", text):
            seconds = float(text)
            ts = datetime.fromtimestamp(seconds, UTC)
        else:
            ts = datetime.fromisoformat(text.replace("z", "Z"))
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadRequest(
            "bad_time", f"{name}={value[:64]!r} is not an RFC 3339 time, epoch seconds or -15m"
        ) from exc
    if not _MIN_TS <= ts <= _MAX_TS:
        raise BadRequest("bad_time", f"{name} must lie between 1970 and 9000")
    return ts.astimezone(UTC)


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise BadRequest("bad_range", "since must be before until")


def parse_bucket(value: str) -> timedelta:
    """``1m``, ``5m``, ``15m``, ``1h``, ``1d`` ... any whole number of minutes up to 7 days."""
    m = _BUCKET.match(value.strip())
    minutes = int(m.group(1)) * _UNITS[m.group(2)] // 60 if m else 0
    if not 1 <= minutes <= MAX_BUCKET_MINUTES:
        raise BadRequest(
            "bad_bucket",
            f"bucket={value[:32]!r}: use a whole number of minutes like 1m, 5m, "
            "15m, 1h or 1d (at most 7d)",
        )
    return timedelta(minutes=minutes)


def format_bucket(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def floor_to(ts: datetime, step: timedelta) -> datetime:
    """Round down onto the grid of ``step`` counted from the Unix epoch (as ``date_bin``)."""
    seconds = int(step.total_seconds())
    epoch = math.floor((ts - _MIN_TS).total_seconds())
    return _MIN_TS + timedelta(seconds=epoch - epoch % seconds)


def valid_id(value: str | None) -> bool:
    return value is not None and ID_PATTERN.match(value) is not None


def check_id(value: str, what: str) -> str:
    """An id that cannot exist (bad characters, too long) is simply not found."""
    if not valid_id(value):
        raise NotFound(f"unknown_{what}", f"no {what} {value[:64]!r}")
    return value


def check_metric(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 64 or not value.isprintable():
        raise BadRequest("bad_metric", "metric must be 1-64 printable characters")
    return value


def encode_cursor(key: dict[str, Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, fields: tuple[str, ...]) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
        if not isinstance(key, dict) or set(key) != set(fields):
            raise ValueError("fields")
        return key
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("bad_cursor", "cursor is not one this API returned") from exc


def cursor_time(key: dict[str, Any], field: str) -> datetime:
    try:
        ts = datetime.fromisoformat(str(key[field]))
    except ValueError as exc:
        raise BadRequest("bad_cursor", "cursor is not one this API returned") from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
