"""The edge agent under a real daprd (deploy/dapr/edge): invocation of /infer through the
sidecar, decisions on Dapr pub/sub (pubsub.mqtt3) to a local subscriber app through ITS
sidecar, and a sidecar killed with -9 while the agent keeps ingesting."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dapr_helpers import Subscriber, edge_sidecar, wait_subscribed
from edgeagent_helpers import Db, Devices, features_onnx, write_bundle

from edgecloud.core.wire.encode import event_id_text
from edgecloud.dev.dapr import Sidecar, SidecarPorts, SidecarSpec
from edgecloud.dev.process import wait_until
from edgecloud.dev.sidecars import dapr_mqtt_account, mqtt_secret_url
from edgecloud.dev.stack import Infra
from edgecloud.edge.decisions import decision_topic
from edgecloud.testing.edge_process import AgentProcess, free_port
from helpers.readings import reading_payload

NORMAL = {"temperature": 20.0, "vibration_rms": 0.1, "pressure": 1.0, "current": 1.0}
ANOMALY = {**NORMAL, "vibration_rms": 5.0}  # score = sigmoid(x @ W + b): 0.06 vs 0.90


@dataclass
class Node:
    node_id: str
    agent: AgentProcess
    sidecar: Sidecar
    subscriber: Subscriber
    db: Db


@pytest.fixture(scope="module")
def node(
    stack: Infra,
    broker: Infra,
    signing_key: Ed25519PrivateKey,
    public_key: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Node]:
    tmp: Path = tmp_path_factory.mktemp("dapr-edge")
    state = tmp / "state"
    node_id = f"dapr-{uuid.uuid4().hex[:6]}"
    db_name = f"t_{uuid.uuid4().hex[:8]}"
    url = stack.create_database(db_name)
    subscriber = Subscriber("edge-pubsub", [decision_topic(node_id, "anomaly")])
    hmi = edge_sidecar(state, broker, f"hmi-{node_id}", subscriber.port)
    wait_subscribed(hmi)
    port = free_port()
    sidecar = edge_sidecar(state, broker, f"agent-{node_id}", port)
    user, pw = broker.mqtt_account("edge-agent")
    bundle = write_bundle(tmp / "bundle", signing_key, features_onnx())
    agent = AgentProcess(
        node_id=node_id, database_url=url, mqtt_url=broker.mqtt_url, mqtt_username=user,
        mqtt_password=pw, log_path=tmp / "agent.log", model=str(bundle), http_port=port,
        extra_env={"EDGECLOUD_OPERATOR_PUBLIC_KEYS": public_key,
                   "EDGECLOUD_BATCH_WINDOW_MS": "5",
                   "EDGECLOUD_DAPR_HTTP_PORT": str(sidecar.spec.ports.http),
                   "EDGECLOUD_DAPR_GRPC_PORT": str(sidecar.spec.ports.grpc)},
    ).start()  # fmt: skip
    db = Db(url)
    yield Node(node_id, agent, sidecar, subscriber, db)
    agent.stop()
    for car in (sidecar, hmi):
        car.stop()
    subscriber.stop()
    db.engine.dispose()
    stack.drop_database(db_name)


def _received_ids(node: Node) -> list[str]:
    return [str(body["data"]["event_id"]) for body in list(node.subscriber.received)]


def _send(devices: Devices, device: str, seqs: range, anomalous: set[int]) -> set[str]:
    """Send readings; the event ids of the anomalous ones."""
    for seq in seqs:
        values = ANOMALY if seq in anomalous else NORMAL
        devices.send(f"devices/{device}/telemetry", reading_payload(device, seq, **values))
    return {event_id_text(device, s) for s in anomalous}


def test_infer_through_the_sidecar_equals_the_direct_call(node: Node) -> None:
    body = reading_payload("inv-1", 7, **ANOMALY)
    direct = httpx.post(f"{node.agent.url}/infer", content=body, timeout=10.0)
    app_id = node.sidecar.spec.app_id
    via = httpx.post(
        f"{node.sidecar.spec.http_url}/v1.0/invoke/{app_id}/method/infer",
        content=body,
        timeout=10.0,
    )
    assert direct.status_code == via.status_code == 200
    a, b = direct.json(), via.json()
    for result in (a, b):
        result["inference"].pop("latency_ms")
    assert a == b
    assert a["inference"]["anomaly"] is True
    bad = httpx.post(
        f"{node.sidecar.spec.http_url}/v1.0/invoke/{app_id}/method/infer",
        content=b"{",
        timeout=10.0,
    )
    assert bad.status_code == 400 and bad.json()["error"] == "bad_json"


def test_a_local_subscriber_receives_every_anomaly(node: Node, devices: Devices) -> None:
    device = f"pub-{uuid.uuid4().hex[:6]}"
    n = 60
    expected = _send(devices, device, range(n), {s for s in range(n) if s % 3 == 0})
    assert len(expected) == 20
    wait_until(lambda: len(node.db.readings(device)) == n, 60.0, "readings stored")
    wait_until(lambda: expected <= set(_received_ids(node)), 60.0, "anomalies delivered")
    mine = [b for b in node.subscriber.received if b["data"]["device_id"] == device]
    assert len(mine) == 20  # each once
    first = mine[0]  # CloudEvents 1.0, the reading event in data
    assert first["specversion"] == "1.0"
    assert first["topic"] == decision_topic(node.node_id, "anomaly")
    assert first["data"]["schema"] == "edgecloud.event/v1"
    assert first["data"]["data"]["inference"]["anomaly"] is True
    assert node.agent.counters()["dapr_published"] >= 20


def test_sidecar_killed_agent_keeps_ingesting_and_counts_failed_publishes(
    node: Node, devices: Devices
) -> None:
    before: dict[str, Any] = node.agent.counters()
    node.sidecar.kill()
    device = f"kill-{uuid.uuid4().hex[:6]}"
    n = 30
    lost = _send(devices, device, range(n), {s for s in range(n) if s % 3 == 1})
    wait_until(lambda: len(node.db.readings(device)) == n, 60.0, "readings stored without Dapr")
    failures = before["dapr_publish_failures"] + len(lost)
    wait_until(lambda: node.agent.counters()["dapr_publish_failures"] == failures, 30.0, "failures")
    assert node.agent.tail(200_000).count("dapr publish failing") == 1
    assert not lost & set(_received_ids(node))
    node.sidecar.wait_ready(node.sidecar.start())
    back = _send(devices, device, range(n, n + 3), {n, n + 1, n + 2})
    wait_until(lambda: back <= set(_received_ids(node)), 60.0, "anomalies after the restart")
    assert "dapr publish works again" in node.agent.tail(200_000)
    assert node.agent.counters()["processed"] >= before["processed"] + n + 3


def test_a_secret_in_the_dapr_store_wins_over_the_environment(
    stack: Infra, broker: Infra, tmp_path: Path
) -> None:
    node_id = f"sec-{uuid.uuid4().hex[:6]}"
    user, pw = broker.mqtt_account("edge-agent")
    url = mqtt_secret_url(broker, *dapr_mqtt_account(broker))
    port = free_port()
    spec = SidecarSpec(f"agent-{node_id}", "edge", SidecarPorts.free(), port,
                       {"mqtt-url": url, "mqtt-password": pw})  # fmt: skip
    car = Sidecar(tmp_path / "state", spec)
    car.wait_ready(car.start())
    db_name = f"t_{uuid.uuid4().hex[:8]}"
    agent = AgentProcess(
        node_id=node_id, database_url=stack.create_database(db_name), mqtt_url=broker.mqtt_url,
        mqtt_username=user, mqtt_password="wrong-password", log_path=tmp_path / "agent.log",
        http_port=port,
        extra_env={"EDGECLOUD_DAPR_HTTP_PORT": str(spec.ports.http),
                   "EDGECLOUD_DAPR_GRPC_PORT": str(spec.ports.grpc),
                   "EDGECLOUD_DAPR_SECRET_STORE": "local-secrets"},
    )  # fmt: skip
    try:
        agent.start()  # healthy means MQTT connected: with the store's password, not the env's
        assert agent.health()["mqtt_connected"] is True
        assert "settings from dapr secrets" in agent.tail(200_000)
    finally:
        agent.stop()
        car.stop()
        stack.drop_database(db_name)
