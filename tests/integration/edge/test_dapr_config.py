"""Live configuration of a running agent through a real daprd (configuration.postgresql on the
node's own Postgres, deploy/dapr/edge-config): a row change in the edge database flips a
decision on the next batch and shows in /metrics; bad values are refused, the old one stays."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edgeagent_helpers import Db, Devices, features_onnx, write_bundle

from edgecloud.dev.dapr import Sidecar, SidecarPorts, SidecarSpec, components_dir
from edgecloud.dev.postgres import libpq_url
from edgecloud.dev.process import wait_until
from edgecloud.dev.sidecars import CONFIG_STORE, dapr_mqtt_account, mqtt_secret_url
from edgecloud.dev.stack import Infra
from edgecloud.edge.migrations import migrate
from edgecloud.testing.edge_process import AgentProcess, free_port
from helpers.readings import reading_payload

NORMAL = {"temperature": 20.0, "vibration_rms": 0.1, "pressure": 1.0, "current": 1.0}  # 0.06
MANIFEST_THRESHOLD = 0.5  # edgeagent_helpers.write_bundle


@dataclass
class Node:
    agent: AgentProcess
    sidecar: Sidecar
    db: Db


@pytest.fixture(scope="module")
def node(
    stack: Infra,
    broker: Infra,
    signing_key: Ed25519PrivateKey,
    public_key: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Node]:
    tmp: Path = tmp_path_factory.mktemp("dapr-config")
    node_id = f"cfg-{uuid.uuid4().hex[:6]}"
    db_name = f"t_{uuid.uuid4().hex[:8]}"
    url = stack.create_database(db_name)
    migrate(url)  # the component needs its table when daprd starts
    port = free_port()
    secrets = {
        "mqtt-url": mqtt_secret_url(broker, *dapr_mqtt_account(broker)),
        "config-connection-string": libpq_url(url),
    }
    spec = SidecarSpec(f"agent-{node_id}", "edge", SidecarPorts.free(), port, secrets,
                       resources=(components_dir("edge-config"),))  # fmt: skip
    sidecar = Sidecar(tmp / "state", spec)
    sidecar.wait_ready(sidecar.start())
    user, pw = broker.mqtt_account("edge-agent")
    bundle = write_bundle(tmp / "bundle", signing_key, features_onnx())
    agent = AgentProcess(
        node_id=node_id, database_url=url, mqtt_url=broker.mqtt_url, mqtt_username=user,
        mqtt_password=pw, log_path=tmp / "agent.log", model=str(bundle), http_port=port,
        extra_env={"EDGECLOUD_OPERATOR_PUBLIC_KEYS": public_key,
                   "EDGECLOUD_BATCH_WINDOW_MS": "5",
                   "EDGECLOUD_DAPR_HTTP_PORT": str(spec.ports.http),
                   "EDGECLOUD_DAPR_GRPC_PORT": str(spec.ports.grpc),
                   "EDGECLOUD_DAPR_CONFIG_STORE": CONFIG_STORE},
    ).start()  # fmt: skip
    db = Db(url)
    yield Node(agent, sidecar, db)
    agent.stop()
    sidecar.stop()
    db.engine.dispose()
    stack.drop_database(db_name)


def _metric(node: Node, name: str) -> float:
    text = httpx.get(f"{node.agent.url}/metrics", timeout=10.0).text
    found = re.search(rf"^edgecloud_edge_{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def _set(node: Node, key: str, value: str, version: int) -> None:
    """As an operator would: one row of the store's table (INSERT or UPDATE)."""
    with node.db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO dapr_configuration (key, value, version) VALUES (%(k)s, %(v)s, %(n)s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version",
            {"k": key, "v": value, "n": str(version)},
        )


def _anomaly(node: Node, devices: Devices, device: str, seq: int) -> bool:
    devices.send(f"devices/{device}/telemetry", reading_payload(device, seq, **NORMAL))
    wait_until(lambda: seq in node.db.readings(device), 60.0, f"reading {seq} stored")
    flag = node.db.scalar(
        "SELECT anomaly FROM readings WHERE device_id = :d AND seq = :s", d=device, s=seq
    )
    assert flag is not None
    return bool(flag)


def test_a_threshold_row_flips_the_next_decision_and_shows_in_metrics(
    node: Node, devices: Devices
) -> None:
    device = f"thr-{uuid.uuid4().hex[:6]}"
    wait_until(lambda: "edgecloud_edge_config_threshold" in httpx.get(
        f"{node.agent.url}/metrics", timeout=10.0).text, 30.0, "config gauges")  # fmt: skip
    assert _metric(node, "config_threshold") == MANIFEST_THRESHOLD
    assert _anomaly(node, devices, device, 0) is False
    before = node.agent.counters()["config_changes"]
    _set(node, "edgecloud.threshold", "0.05", 1)
    wait_until(lambda: _metric(node, "config_threshold") == 0.05, 30.0, "threshold applied")
    assert node.agent.counters()["config_changes"] == before + 1
    assert _anomaly(node, devices, device, 1) is True  # the same reading, now anomalous
    _set(node, "edgecloud.threshold", "", 2)  # empty: the manifest's again
    wait_until(
        lambda: _metric(node, "config_threshold") == MANIFEST_THRESHOLD, 30.0, "threshold reset"
    )
    assert _anomaly(node, devices, device, 2) is False


def test_bad_values_are_refused_and_the_old_ones_stay(node: Node, devices: Devices) -> None:
    device = f"bad-{uuid.uuid4().hex[:6]}"
    _set(node, "edgecloud.threshold", "0.05", 3)
    wait_until(lambda: _metric(node, "config_threshold") == 0.05, 30.0, "threshold applied")
    _set(node, "edgecloud.batch_size", "64", 1)
    wait_until(lambda: _metric(node, "config_batch_size") == 64, 30.0, "batch size applied")
    refused = node.agent.counters()["config_refused"]
    _set(node, "edgecloud.threshold", "high", 4)  # not a number
    wait_until(lambda: node.agent.counters()["config_refused"] == refused + 1, 30.0, "refused")
    _set(node, "edgecloud.batch_size", "0", 2)  # out of range
    wait_until(lambda: node.agent.counters()["config_refused"] == refused + 2, 30.0, "refused")
    _set(node, "edgecloud.batch_window_ms", "1e9", 1)  # out of range
    wait_until(lambda: node.agent.counters()["config_refused"] == refused + 3, 30.0, "refused")
    assert _metric(node, "config_threshold") == 0.05
    assert _metric(node, "config_batch_size") == 64
    assert _metric(node, "config_batch_window_ms") == 5.0  # the environment's
    assert _metric(node, "config_refused_total") == refused + 3
    log = node.agent.tail(200_000)
    assert log.count("configuration value refused") == 3
    assert _anomaly(node, devices, device, 0) is True  # 0.05 still in force
    _set(node, "edgecloud.batch_window_ms", "2", 2)
    wait_until(lambda: _metric(node, "config_batch_window_ms") == 2.0, 30.0, "window applied")
    assert _anomaly(node, devices, device, 1) is True  # batches still flow on the new window
    for key, version in (("edgecloud.threshold", 5), ("edgecloud.batch_size", 3),
                         ("edgecloud.batch_window_ms", 3)):  # fmt: skip
        _set(node, key, "", version)
    wait_until(lambda: _metric(node, "config_batch_size") == 2000, 30.0, "defaults back")


def test_the_watch_survives_a_sidecar_kill_and_reads_what_changed_meanwhile(
    node: Node, devices: Devices
) -> None:
    """daprd killed with -9: the values in force stay, the outage is logged and counted once,
    and on the sidecar's return the watch re-subscribes: the change made while it was down
    applies, and so does the next one."""
    device = f"kill-{uuid.uuid4().hex[:6]}"
    _set(node, "edgecloud.threshold", "0.05", 10)
    wait_until(lambda: _metric(node, "config_threshold") == 0.05, 30.0, "threshold applied")
    outages = node.agent.counters()["config_watch_outages"]
    node.sidecar.kill()
    wait_until(
        lambda: node.agent.counters()["config_watch_outages"] == outages + 1, 30.0, "outage seen"
    )
    assert _anomaly(node, devices, device, 0) is True  # ingest goes on, 0.05 still in force
    _set(node, "edgecloud.threshold", "0.9", 11)  # changed while the sidecar is down
    node.sidecar.wait_ready(node.sidecar.start())
    wait_until(lambda: _metric(node, "config_threshold") == 0.9, 60.0, "change read on return")
    assert _anomaly(node, devices, device, 1) is False
    _set(node, "edgecloud.threshold", "0.05", 12)  # the new subscription carries changes
    wait_until(lambda: _metric(node, "config_threshold") == 0.05, 30.0, "next change applied")
    assert _anomaly(node, devices, device, 2) is True
    assert node.agent.counters()["config_watch_outages"] == outages + 1
    log = node.agent.tail(400_000)
    assert log.count("dapr configuration subscription failing") == outages + 1
    assert "dapr configuration subscribed again" in log
    _set(node, "edgecloud.threshold", "", 13)
    wait_until(
        lambda: _metric(node, "config_threshold") == MANIFEST_THRESHOLD, 30.0, "threshold reset"
    )
