"""Helpers of the edge agent tests: a device publisher, an event collector, the agent's
database, and signed model bundles."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgecloud.adapters.mqtt import MqttConfig, make_publisher, make_subscriber
from edgecloud.core.signing import sign_bundle
from edgecloud.dev.stack import Infra
from edgecloud.edge.db import make_engine
from edgecloud.testing.edge_process import AgentProcess
from helpers.readings import reading_payload

NAMES = ["temperature", "vibration_rms", "pressure", "current"]
# what the start_agent fixture gives; here, not in conftest: ``from conftest import`` takes
# whichever conftest was imported first when unit and integration tests run in one session
AgentFactory = Callable[..., AgentProcess]


class Devices:
    """QoS 1 publisher with the admin account; ``send`` waits for the broker's PUBACK."""

    def __init__(self, stack: Infra) -> None:
        user, pw = stack.mqtt_account("admin")
        self.pub = make_publisher(MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port,
                                        username=user, password=pw))  # fmt: skip
        self.pub.start()

    def send(self, topic: str, payload: bytes) -> None:
        self.pub.wait([self.pub.publish(topic, payload)])

    def reading(self, device: str, seq: int, **values: Any) -> bytes:
        body = reading_payload(device, seq, **values)
        self.send(f"devices/{device}/telemetry", body)
        return body


class Events:
    """Every event an agent publishes on ``edgecloud/{node}/events/#``."""

    def __init__(self, stack: Infra, node_id: str) -> None:
        user, pw = stack.mqtt_account("admin")
        cfg = MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port, username=user, password=pw)
        self.sub = make_subscriber(cfg, [f"edgecloud/{node_id}/events/#"],
                              client_id=f"test-ev-{uuid.uuid4().hex[:8]}")  # fmt: skip
        self.events: list[dict[str, Any]] = []
        self.messages = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.sub.start()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for m in self.sub.get_batch(500, 0.05):
                body = json.loads(m.payload)
                self.events.extend(body if isinstance(body, list) else [body])
                self.messages += 1
                m.ack()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["type"] == kind]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sub.stop()


class Db:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def readings(self, device: str) -> list[int]:
        return [r[0] for r in self.rows(
            "SELECT seq FROM readings WHERE device_id = :d ORDER BY seq", d=device)]  # fmt: skip

    def dead_letters(self, **where: Any) -> list[Any]:
        cond = " AND ".join(f"{k} = :{k}" for k in where) or "TRUE"
        return self.rows(f"SELECT reason, detail, payload, topic, device_id, seq FROM dead_letters "
                         f"WHERE {cond} ORDER BY id", **where)  # fmt: skip


# --- model bundles -----------------------------------------------------------------------
def features_onnx() -> bytes:
    """features float32 [N,4] -> score [N,1] = sigmoid(x @ W + b)."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.array([[0.05], [1.0], [0.2], [0.01]], np.float32)
    b = np.array([-4.0], np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "W"], ["z0"]),
         helper.make_node("Add", ["z0", "B"], ["z"]),
         helper.make_node("Sigmoid", ["z"], ["score"])],
        "g",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def write_bundle(folder: Path, key: Ed25519PrivateKey, data: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(data)
    doc = {
        "name": "test-features", "version": "1.0.0", "runtime": "onnx", "file": "model.onnx",
        "sha256": hashlib.sha256(data).hexdigest(),
        "inputs": {"features": {"from": "values", "names": NAMES}},
        "outputs": {"score": {"output": "score"}},
        "decision": {"anomaly": {"score_above": 0.5}},
    }  # fmt: skip
    (folder / "manifest.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    sign_bundle(folder, key)
    return folder
