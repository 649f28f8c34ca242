"""Slow clients cut off: uvicorn's HTTP protocols with a header and a body deadline.

uvicorn times out only an idle keep-alive connection; a client that opens a socket and sends
its headers (or its body) one byte every few seconds holds the connection, and a slot of the
connection limit, for as long as it likes. ``protocol_class(limits)`` returns uvicorn's own
protocol (httptools where it is installed, else h11) with two deadlines added:

- ``header_timeout_s`` from the first byte of a request (from the connection's start for the
  first one) until its headers are complete;
- ``body_timeout_s`` from the end of the headers until the whole body is in.

A client past a deadline is logged and its socket closed; an app waiting for the body sees
``http.disconnect``. Once the request is read, the app takes as long as it needs (no
deadline), and between requests uvicorn's own keep-alive timeout applies. Pass the class as
``uvicorn.run(http=...)`` together with ``limit_concurrency`` (the connection limit).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("edgecloud.http")


@dataclass(frozen=True)
class SlowClientLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 120.0


class _Deadlines:
    """State, timer and connection hooks shared by both protocol classes (put before the
    uvicorn protocol in the bases: its ``super()`` is that protocol); ``phase`` is ``headers``
    (reading them), ``body``, ``app`` (the request is in) or ``idle`` (between requests)."""

    limits = SlowClientLimits()
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._phase = "headers"
        self._timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)  # type: ignore[misc]  # the uvicorn protocol's
        self._arm("headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self, phase: str) -> None:
        self._disarm()
        self._phase = phase
        seconds = self.limits.header_timeout_s if phase == "headers" else self.limits.body_timeout_s
        self._timer = self.loop.call_later(seconds, self._cut_off, phase)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cut_off(self, phase: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        seconds = self.limits.header_timeout_s if phase == "headers" else self.limits.body_timeout_s
        log.warning(
            "slow client cut off: its request %s took more than %.1f s",
            "headers" if phase == "headers" else "body",
            seconds,
            extra={"client": f"{self.client[0]}:{self.client[1]}" if self.client else None},
        )
        self.transport.close()

    def _request_starts(self) -> None:
        if self._phase == "idle":
            self._arm("headers")


class _H11(_Deadlines, H11Protocol):
    def data_received(self, data: bytes) -> None:
        self._request_starts()
        super().data_received(data)
        self._follow_state()

    def on_response_complete(self) -> None:
        self._phase = "idle"
        super().on_response_complete()
        self._follow_state()

    def _follow_state(self) -> None:
        import h11

        state = self.conn.their_state
        if state is h11.SEND_BODY and self._phase == "headers":
            self._arm("body")
        elif state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED) and self._phase in ("headers", "body"):
            self._disarm()
            self._phase = "app"


def _httptools_class() -> type[Any] | None:
    if importlib.util.find_spec("httptools") is None:
        return None
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class _HttpTools(_Deadlines, HttpToolsProtocol):
        def data_received(self, data: bytes) -> None:
            self._request_starts()
            super().data_received(data)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            if self._phase == "headers":
                self._arm("body")

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()
            self._phase = "app"

        def on_response_complete(self) -> None:
            self._phase = "idle"
            super().on_response_complete()

    return _HttpTools


def protocol_class(limits: SlowClientLimits, *, prefer: str = "auto") -> type[Any]:
    """A uvicorn HTTP protocol class (``prefer``: ``auto``, ``httptools`` or ``h11``)."""
    base: type[Any] | None = _httptools_class() if prefer in ("auto", "httptools") else None
    if base is None:
        base = _H11
    return type(f"SlowClient{base.__name__}", (base,), {"limits": limits})
