"""Issue 20 over the real protocols: oversized readings at the broker and the agent, the ts
window, duplicate keys, the HTTP token, slow and many HTTP clients (real Mosquitto, Postgres
and ``edgecloud edge run``)."""

from __future__ import annotations

import hashlib
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edgeagent_helpers import Db, Devices

from edgecloud.adapters.http_limits import DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT_S
from edgecloud.core.errors import TransportError
from edgecloud.dev.process import wait_until
from edgecloud.dev.stack import Infra
from edgecloud.testing.edge_process import AgentProcess, post
from helpers.readings import reading_payload

TOKEN = "test-token-" + uuid.uuid4().hex
LIMIT = 4096


class Node:
    def __init__(self, agent: AgentProcess, db: Db) -> None:
        self.agent, self.db = agent, db


@pytest.fixture(scope="module")
def node(stack: Infra, broker: Infra, tmp_path_factory: Any) -> Iterator[Node]:
    tmp: Path = tmp_path_factory.mktemp("hardening")
    name = f"t_{uuid.uuid4().hex[:8]}"
    url = stack.create_database(name)
    user, pw = broker.mqtt_account("edge-agent")
    agent = AgentProcess(
        node_id=f"hard-{uuid.uuid4().hex[:6]}", database_url=url, mqtt_url=broker.mqtt_url,
        mqtt_username=user, mqtt_password=pw, log_path=tmp / "agent.log",
        extra_env={"EDGECLOUD_BATCH_WINDOW_MS": "5", "EDGECLOUD_MAX_PAYLOAD_BYTES": str(LIMIT),
                   "EDGECLOUD_HTTP_TOKEN": TOKEN},
    ).start()  # fmt: skip
    db = Db(url)
    yield Node(agent, db)
    agent.stop()
    db.engine.dispose()
    stack.drop_database(name)


def dev() -> str:
    return f"dev-{uuid.uuid4().hex[:8]}"


def test_broker_limit_is_derived_from_the_agents_setting(broker: Infra) -> None:
    conf = (broker.mosquitto.home / "mosquitto.conf").read_text()
    assert f"message_size_limit {broker.mosquitto.message_size_limit}\n" in conf
    assert broker.mosquitto.message_size_limit == 1024 * 1024  # 16 x 64 KiB


def test_a_10_mib_reading_is_refused_and_nothing_else_is_lost(node: Node, devices: Devices) -> None:
    d = dev()
    topic = f"devices/{d}/telemetry"
    huge = reading_payload(d, 2, audio=[0.5] * (10 * 1024 * 1024 // 5))  # ~10 MiB of JSON
    assert len(huge) > 10 * 1024 * 1024
    big = reading_payload(
        d, 3, audio=[0.5] * 20_000
    )  # ~100 KiB: over the agent's limit, not the broker's
    before = node.agent.counters()
    devices.reading(d, 1)
    with pytest.raises(TransportError, match="packet too large"):  # MQTT v5: PUBACK 0x95
        devices.send(topic, huge)
    devices.send(topic, big)
    devices.reading(d, 4)
    wait_until(lambda: node.db.readings(d) == [1, 4], what="the good readings stored")
    after = wait_until(
        lambda: (c := node.agent.counters())["dead_letters"] > before["dead_letters"] and c,
        what="the oversized reading dead-lettered",
    )
    # the agent never saw the 10 MiB one: 3 received, 2 stored, 1 dead letter
    assert after["received"] - before["received"] == 3
    assert after["dead_letters"] - before["dead_letters"] == 1
    [(reason, detail, payload, _t, _d, _s)] = node.db.dead_letters(topic=topic)
    assert reason == "too_large"
    assert bytes(payload) == big[:4096]
    assert f"{len(big)} bytes, sha256 {hashlib.sha256(big).hexdigest()}" in detail
    biggest = node.db.scalar("SELECT max(length(payload)) FROM dead_letters")
    assert biggest <= LIMIT


@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", 0])
def test_timestamps_outside_the_window_are_dead_letters(
    node: Node, devices: Devices, ts: Any
) -> None:
    d = dev()
    topic = f"devices/{d}/telemetry"
    bad = json.dumps({"device_id": d, "seq": 1, "ts": ts, "values": {"t": 1.0}}).encode()
    devices.send(topic, bad)
    devices.reading(d, 2)
    wait_until(lambda: node.db.readings(d) == [2], what="the good reading stored")
    rows = wait_until(lambda: node.db.dead_letters(topic=topic), what="dead letter")
    [(reason, detail, payload, *_)] = rows
    assert (reason, bytes(payload)) == ("bad_timestamp", bad)
    assert detail


def test_a_repeated_device_id_is_a_dead_letter(node: Node, devices: Devices) -> None:
    d = dev()
    topic = f"devices/{d}/telemetry"
    body = reading_payload(d, 1)
    repeated = body[:-1] + f', "device_id": "{d}"}}'.encode()
    devices.send(topic, repeated)
    devices.reading(d, 2)
    wait_until(lambda: node.db.readings(d) == [2], what="the good reading stored")
    [(reason, _detail, payload, *_)] = wait_until(lambda: node.db.dead_letters(topic=topic))
    assert (reason, bytes(payload)) == ("duplicate_key", repeated)


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def test_infer_and_metrics_need_the_token(node: Node) -> None:
    url = node.agent.url
    assert _get(url + "/metrics")[0] == 401
    assert _get(url + "/metrics", "wrong-" + TOKEN)[0] == 401
    code, text = _get(url + "/metrics", TOKEN)
    assert code == 200 and b"edgecloud_edge_received" in text
    code, body = post(url + "/infer", reading_payload("x", 1))
    assert (code, body["error"]) == (401, "unauthorized")
    req = urllib.request.Request(url + "/infer", data=reading_payload("x", 1), method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as info:  # no model here: 503, past the token
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 503
    info.value.close()
    assert _get(url + "/healthz")[0] == 200  # probes need no token


def test_infer_refuses_a_large_body_without_reading_it(node: Node) -> None:
    req = urllib.request.Request(node.agent.url + "/infer", data=b"x" * (LIMIT + 1), method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert (info.value.code, json.loads(info.value.read())["error"]) == (413, "too_large")
    info.value.close()


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except OSError:  # reset
        return True


def test_slow_clients_are_cut_off_and_the_agent_keeps_answering(node: Node) -> None:
    port = node.agent.http_port
    slow = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(10)]
    t0 = time.monotonic()
    for s in slow[:5]:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never end
    for s in slow[5:]:
        s.sendall(b"POST /infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")  # body
    assert _get(node.agent.url + "/healthz")[0] == 200  # served meanwhile
    for s in slow:
        while True:  # drip a byte a second until the server closes
            if _closed_after_drip(s):
                break
    elapsed = time.monotonic() - t0
    assert DEFAULT_REQUEST_TIMEOUT_S - 1 < elapsed < DEFAULT_REQUEST_TIMEOUT_S + 15
    for s in slow:
        s.close()


def _closed_after_drip(sock: socket.socket) -> bool:
    try:
        sock.sendall(b"a")
    except OSError:
        return True
    sock.settimeout(1.0)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_connections_over_the_cap_are_closed_at_once(node: Node) -> None:
    port = node.agent.http_port
    held = [socket.create_connection(("127.0.0.1", port), timeout=10)
            for _ in range(DEFAULT_MAX_CONNECTIONS)]  # fmt: skip
    try:
        extra = socket.create_connection(("127.0.0.1", port), timeout=10)
        extra.settimeout(5.0)
        assert _closed(extra)
        extra.close()
    finally:
        for s in held:
            s.close()
    wait_until(lambda: _get(node.agent.url + "/healthz")[0] == 200, what="served again")
