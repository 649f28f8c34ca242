"""Both uvicorn protocols (httptools and h11) cut off a client that is too slow with its
headers or its body, and still serve a normal request on the same server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from edgecloud.adapters.httpserver import SlowClientLimits, protocol_class
from edgecloud.dev import process


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"got %d" % len(body)})


@pytest.fixture(params=["httptools", "h11"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    port = process.free_port()
    http = protocol_class(SlowClientLimits(header_timeout_s=0.5, body_timeout_s=0.5),
                          prefer=request.param)  # fmt: skip
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=http, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    process.wait_until(lambda: srv.started, timeout=10, what="uvicorn started")
    expected = {"httptools": "_HttpTools", "h11": "_H11"}[request.param]
    assert http.__mro__[1].__name__ == expected
    yield port, http.__name__
    srv.should_exit = True
    thread.join(10)


def closed_after(sock: socket.socket, limit_s: float = 10.0) -> float:
    """Seconds until the server closes the socket (recv returns b"")."""
    t0 = time.monotonic()
    sock.settimeout(limit_s)
    while sock.recv(4096):
        pass
    return time.monotonic() - t0


def test_slow_headers_and_body_are_cut_off(server: tuple[int, str]) -> None:
    port, name = server
    assert name.startswith("SlowClient")  # ours, on the protocol the fixture asked for
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers never end
        assert closed_after(s) < 4.0  # 0.5 s deadline (uvicorn alone keeps waiting)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123")  # body stops
        assert closed_after(s) < 4.0  # 0.5 s deadline (uvicorn alone keeps waiting)
    with socket.create_connection(("127.0.0.1", port)) as s:  # a normal request still works
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        )
        s.settimeout(10)
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200") and b"got 3" in reply
