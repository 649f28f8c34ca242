"""The bridge's /metrics + /healthz server against slow and many clients (real sockets)."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest

from edgecloud.dev.process import wait_until
from edgecloud.sync.metrics import BridgeMetrics, HttpServer

TIMEOUT_S = 1.5
CAP = 8


@pytest.fixture
def server() -> Iterator[HttpServer]:
    srv = HttpServer("127.0.0.1", 0, BridgeMetrics(), lambda: {"ok": True},
                     request_timeout_s=TIMEOUT_S, max_connections=CAP)  # fmt: skip
    srv.start()
    yield srv
    srv.stop()


def _healthz(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
        return int(resp.status)


def _cut_within(sock: socket.socket, seconds: float) -> bool:
    """Drip a byte every 0.2 s; True once the server has closed the connection."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"a")
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def test_a_client_dripping_headers_is_cut_at_the_deadline(server: HttpServer) -> None:
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    t0 = time.monotonic()
    for s in slow:
        s.sendall(b"GET /metrics HTTP/1.0\r\nX-")
    assert _healthz(server.port) == 200  # others are served meanwhile
    assert all(_cut_within(s, TIMEOUT_S + 10) for s in slow)
    assert time.monotonic() - t0 >= TIMEOUT_S - 0.1
    for s in slow:
        s.close()


def test_connections_over_the_cap_are_closed_and_slots_come_back(server: HttpServer) -> None:
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(CAP)]
    wait_until(lambda: server.active == CAP, 10.0, "the held connections accepted")
    extra = socket.create_connection(("127.0.0.1", server.port))
    extra.settimeout(5)
    with contextlib.suppress(ConnectionResetError):  # closed, or reset: both refuse it
        assert extra.recv(10) == b""
    extra.close()
    assert server.refused >= 1
    for s in held:
        s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if _healthz(server.port) == 200:
                break
        except OSError:
            time.sleep(0.1)
    assert _healthz(server.port) == 200
