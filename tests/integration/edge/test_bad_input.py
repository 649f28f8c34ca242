"""Every bad input of issue 3, sent over real MQTT to a running agent (real Postgres).

Each is counted, kept in dead letters with its reason, and the agent keeps serving: a good
reading sent after it is stored. One agent serves the module (with a signed ONNX model whose
input is temperature, vibration_rms, pressure, current); tests use their own device ids.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edgeagent_helpers import Db, Devices, Events, features_onnx, write_bundle

from edgecloud.dev.process import wait_until
from edgecloud.dev.stack import Infra
from edgecloud.testing.edge_process import AgentProcess, post
from helpers.readings import reading_payload


class Node:
    def __init__(self, agent: AgentProcess, db: Db, events: Events) -> None:
        self.agent, self.db, self.events = agent, db, events


@pytest.fixture(scope="module")
def node(
    stack: Infra,
    broker: Infra,
    signing_key: Ed25519PrivateKey,
    public_key: str,
    tmp_path_factory: Any,
) -> Iterator[Node]:
    tmp: Path = tmp_path_factory.mktemp("bad-input")
    name = f"t_{uuid.uuid4().hex[:8]}"
    url = stack.create_database(name)
    node_id = f"bad-{uuid.uuid4().hex[:6]}"
    user, pw = broker.mqtt_account("edge-agent")
    bundle = write_bundle(tmp / "bundle", signing_key, features_onnx())
    events = Events(broker, node_id)
    agent = AgentProcess(
        node_id=node_id, database_url=url, mqtt_url=broker.mqtt_url, mqtt_username=user,
        mqtt_password=pw, log_path=tmp / "agent.log", model=str(bundle),
        extra_env={"EDGECLOUD_OPERATOR_PUBLIC_KEYS": public_key,
                   "EDGECLOUD_HEARTBEAT_INTERVAL_S": "1", "EDGECLOUD_BATCH_WINDOW_MS": "5",
                   "EDGECLOUD_MAX_PAYLOAD_BYTES": "4096", "EDGECLOUD_NODE_LABELS": "site=t"},
    ).start()  # fmt: skip
    assert agent.health()["model"]["state"] == "loaded"
    db = Db(url)
    yield Node(agent, db, events)
    events.stop()
    agent.stop()
    db.engine.dispose()
    stack.drop_database(name)


def dev() -> str:
    return f"dev-{uuid.uuid4().hex[:8]}"


def settle(node: Node, device: str, seq: int) -> dict[str, int]:
    """Send nothing; wait until ``device``'s good ``seq`` is stored and counted."""
    wait_until(lambda: seq in node.db.readings(device), what=f"{device}/{seq} stored")
    return dict(wait_until(lambda: (c := node.agent.counters()) and c, what="counters"))


def send_bad_then_good(
    node: Node, devices: Devices, device: str, topic: str, payload: bytes
) -> tuple[dict[str, int], dict[str, int]]:
    before = node.agent.counters()
    devices.send(topic, payload)
    devices.reading(device, 1000)
    wait_until(lambda: 1000 in node.db.readings(device), what="good reading stored")
    after = wait_until(
        lambda: (c := node.agent.counters())["processed"] > before["processed"] and c,
        what="counters",
    )
    return before, after


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("invalid_json", "bad_json"),
        ("wrong_types", "wrong_type"),
        ("nan", "non_finite"),
        ("inf", "non_finite"),
        ("overflow_inf", "non_finite"),
        ("missing_fields", "missing_field"),
        ("device_mismatch", "device_mismatch"),
        ("oversized", "too_large"),
        ("not_utf8", "bad_encoding"),
        ("not_object", "not_object"),
    ],
)
def test_invalid_payload_dead_lettered_and_agent_keeps_serving(
    node: Node, devices: Devices, case: str, reason: str
) -> None:
    d = dev()
    topic = f"devices/{d}/telemetry"
    good = json.loads(reading_payload(d, 1))
    payloads: dict[str, bytes] = {
        "invalid_json": b'{"device_id": "' + d.encode() + b'", "seq": 1,',
        "wrong_types": json.dumps({**good, "values": {"temperature": "hot"}}).encode(),
        "nan": json.dumps({**good, "values": {"temperature": math.nan}}).encode(),
        "inf": json.dumps({**good, "values": {"temperature": math.inf}}).encode(),
        "overflow_inf": (
            b'{"device_id": "' + d.encode() + b'", "seq": 1, "ts": 1, "values": {"t": 1e400}}'
        ),
        "missing_fields": json.dumps({"device_id": d, "seq": 1, "ts": good["ts"]}).encode(),
        "device_mismatch": json.dumps({**good, "device_id": "someone-else"}).encode(),
        "oversized": json.dumps({**good, "values": {"audio": [0.5] * 2000}}).encode(),
        "not_utf8": b'{"device_id": "\xff\xfe"}',
        "not_object": b"[1, 2, 3]",
    }
    before, after = send_bad_then_good(node, devices, d, topic, payloads[case])
    d_ = delta(before, after)
    assert (d_["received"], d_["processed"], d_["dead_letters"]) == (2, 1, 1)
    assert d_.get("duplicates", 0) == d_.get("inference_failures", 0) == 0
    [(got_reason, detail, payload, got_topic, _, _)] = node.db.dead_letters(topic=topic)
    kept = payloads[case][:4096] if case == "oversized" else payloads[case]  # a bounded prefix
    assert (got_reason, bytes(payload), got_topic) == (reason, kept, topic)
    assert detail
    assert node.db.readings(d) == [1000]


def test_replay_same_body_is_a_duplicate_not_stored_twice(node: Node, devices: Devices) -> None:
    d = dev()
    body = devices.reading(d, 5)
    wait_until(lambda: node.db.readings(d) == [5], what="first copy stored")
    before = node.agent.counters()
    devices.send(f"devices/{d}/telemetry", body)  # the same bytes again
    devices.reading(d, 1000)
    wait_until(lambda: node.db.readings(d) == [5, 1000], what="good reading stored")
    after = wait_until(
        lambda: (c := node.agent.counters())["processed"] > before["processed"] and c
    )
    assert after["duplicates"] - before["duplicates"] == 1
    assert after["dead_letters"] - before["dead_letters"] == 0
    assert node.db.dead_letters(device_id=d) == []


def test_replay_with_other_body_is_a_seq_conflict_dead_letter(node: Node, devices: Devices) -> None:
    d = dev()
    devices.reading(d, 5, temperature=1.0, vibration_rms=0.1, pressure=1.0, current=1.0)
    wait_until(lambda: node.db.readings(d) == [5])
    before = node.agent.counters()
    other = devices.reading(d, 5, temperature=99.0, vibration_rms=0.1, pressure=1.0, current=1.0)
    devices.reading(d, 1000)
    wait_until(lambda: node.db.readings(d) == [5, 1000])
    after = wait_until(
        lambda: (c := node.agent.counters())["processed"] > before["processed"] and c
    )
    assert after["dead_letters"] - before["dead_letters"] == 1
    assert after["duplicates"] - before["duplicates"] == 0
    [(reason, _detail, payload, _topic, device, seq)] = node.db.dead_letters(device_id=d)
    assert (reason, bytes(payload), device, seq) == ("seq_conflict", other, d, 5)
    stored = node.db.scalar(
        "SELECT values->>'temperature' FROM readings WHERE device_id = :d AND seq = 5", d=d
    )
    assert float(stored) == 1.0  # the first reading is kept


def test_out_of_order_seq_is_stored_and_counted(node: Node, devices: Devices) -> None:
    d = dev()
    devices.reading(d, 10)
    wait_until(lambda: node.db.readings(d) == [10])
    before = node.agent.counters()
    devices.reading(d, 7)
    wait_until(lambda: node.db.readings(d) == [7, 10])
    after = wait_until(
        lambda: (c := node.agent.counters())["processed"] > before["processed"] and c
    )
    assert after["out_of_order"] - before["out_of_order"] == 1
    assert after["dead_letters"] - before["dead_letters"] == 0
    assert after["processed"] - before["processed"] == 1


def test_values_the_model_does_not_know_store_reading_and_dead_letter_inference(
    node: Node, devices: Devices
) -> None:
    d = dev()
    before = node.agent.counters()
    body = devices.reading(d, 1, temperature=70.0, humidity=0.5)  # no vibration, pressure...
    devices.reading(d, 1000)
    wait_until(lambda: node.db.readings(d) == [1, 1000])
    after = wait_until(lambda: (c := node.agent.counters())["processed"] >= before["processed"] + 2
                     and c)  # fmt: skip
    assert after["inference_failures"] - before["inference_failures"] == 1
    assert after["dead_letters"] - before["dead_letters"] == 1
    [(reason, detail, payload, _t, device, seq)] = node.db.dead_letters(device_id=d)
    assert (reason, bytes(payload), device, seq) == ("inference.value_missing", body, d, 1)
    assert "vibration_rms" in detail
    rows = node.db.rows(
        "SELECT seq, inference IS NULL, score FROM readings WHERE device_id = :d ORDER BY seq", d=d
    )
    assert [(r[0], r[1]) for r in rows] == [(1, True), (1000, False)]
    assert rows[1][2] is not None


def test_events_and_heartbeat_out(node: Node, devices: Devices) -> None:
    d = dev()
    devices.reading(d, 1)
    ev = wait_until(lambda: [e for e in node.events.of_type("reading") if e["device_id"] == d])
    assert ev[0]["data"]["seq"] == 1 and ev[0]["data"]["inference"]["model"] == "test-features"
    assert ev[0]["node_id"] == node.agent.node_id
    time.sleep(1.5)
    hb = node.events.of_type("heartbeat")[-1]
    assert hb["data"]["labels"] == {"site": "t"}
    assert hb["data"]["active_models"] == [{"name": "test-features", "version": "1.0.0"}]
    assert {"received", "processed", "dead_letters", "duplicates"} <= hb["data"]["counters"].keys()
    assert hb["data"]["uptime_s"] > 0


def test_http_infer_and_metrics(node: Node) -> None:
    good = reading_payload("http-dev", 1)
    code, body = post(node.agent.url + "/infer", good)
    assert code == 200 and body["inference"]["model"] == "test-features"
    code, body = post(node.agent.url + "/infer", b"{not json")
    assert (code, body["error"]) == (400, "bad_json")
    code, body = post(node.agent.url + "/infer", reading_payload("http-dev", 2, temperature=1.0))
    assert (code, body["error"]) == (400, "inference.value_missing")
    import urllib.request

    with urllib.request.urlopen(node.agent.url + "/metrics") as resp:
        text = resp.read().decode()
    assert "edgecloud_edge_received_total" in text or "edgecloud_edge_received " in text
    assert "edgecloud_edge_batch_seconds_bucket" in text
