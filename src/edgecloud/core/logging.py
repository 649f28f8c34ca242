"""One structured log stream. ``configure_logging`` installs a JSON (or text) formatter on the
root logger so that uvicorn, paho and librdkafka callbacks write into the same stream;
``bind`` attaches ids (``event_id``, ``device_id``, ``node_id``) to every line in a context.

Both formatters pass the finished line through ``redact``: API tokens (``ecl_<scope>_...``),
the credential of an ``Authorization`` header or a ``Bearer`` value, and ``token=`` /
``password=`` query values never reach the log, whoever logged them (uvicorn's access log,
an exception's text, a URL in a message).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("edgecloud_log_ctx")


@contextlib.contextmanager
def bind(**ids: Any) -> Iterator[None]:
    token = _context.set({**_context.get({}), **ids})
    try:
        yield
    finally:
        _context.reset(token)


def bind_global(**ids: Any) -> None:
    """Bind ids for the rest of this context (a process's ``node_id``, say)."""
    _context.set({**_context.get({}), **ids})


_SECRETS = re.compile(
    r"(?P<ecl>ecl_[a-z]+_)[A-Za-z0-9_-]{8,}"
    r"|(?P<auth>authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic)\s+)?)(?!ecl_|bearer\s|basic\s)[^\s\"',;&]+"
    r"|(?P<bearer>\bbearer\s+)(?!ecl_)[A-Za-z0-9._~+/=-]{8,}"
    r"|(?P<query>[?&](?:token|access_token|password|api_key)=)[^&\s\"']+",
    re.IGNORECASE,
)


def _mask(m: re.Match[str]) -> str:
    prefix = m.group("ecl") or m.group("auth") or m.group("bearer") or m.group("query")
    return (prefix or "") + "***"


def redact(text: str) -> str:
    """``text`` with every credential it shows replaced by ``***`` (the prefix is kept)."""
    low = text.lower()  # plain substring tests first: most lines hold none (about 1 us)
    if "ecl_" not in low and not any(hint in low for hint in _HINTS):
        return text
    return _SECRETS.sub(_mask, text)


_HINTS = ("authorization", "bearer", "token=", "password=", "api_key=")
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_context.get({}))
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = " ".join(f"{k}={v}" for k, v in _context.get({}).items())
        base = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        if ctx:
            base += f" [{ctx}]"
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return redact(base)


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
        lg.setLevel(logging.NOTSET)  # follow the root's level (a uvicorn Config sets its own)
        lg.disabled = False
