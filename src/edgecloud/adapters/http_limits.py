"""Limits for uvicorn servers that face untrusted clients: slow requests and connection floods.

uvicorn cuts an idle keep-alive connection (``timeout_keep_alive``) and answers 503 over
``limit_concurrency``, but a client that sends its request headers or body one byte at a time
is never cut off, and every open socket counts. ``LimitedH11Protocol`` (h11, set as
``uvicorn.Config(http=...)`` by ``limited_protocol``) adds:

- a request deadline: the whole request (headers and body) must arrive within
  ``request_timeout_s`` of the connection (or of the previous response); a client still sending
  then is disconnected. The app's own run time does not count (the request is complete);
- a connection cap: over ``max_connections`` open connections, a new one is closed at once,
  before it costs a parser or a task.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 64


class LimitedH11Protocol(H11Protocol):
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    refused = 0  # connections closed over the cap (class-wide: one server per class)
    timed_out = 0  # connections cut while still sending their request

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            type(self).refused += 1
            transport.abort()
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if getattr(self, "transport", None) is None:
            return  # refused in connection_made: nothing was set up
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request on this connection gets its own deadline

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.request_timeout_s, self._expired)

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        # IDLE: headers incomplete; SEND_BODY: body incomplete. DONE: the app has the request.
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            type(self).timed_out += 1
            self.transport.abort()


def limited_protocol(
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> type[LimitedH11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type(
        "LimitedH11Protocol",
        (LimitedH11Protocol,),
        {"request_timeout_s": request_timeout_s, "max_connections": max_connections},
    )
