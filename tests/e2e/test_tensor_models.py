"""Three tensor-model signatures, each: push (checked as the edge will load it) -> rollout with
the DEFAULT shadow gates (each new kind of reading is one the active model cannot serve, so the
candidate is gated alone) -> tensor readings over real MQTT, JSON and binary forms -> the
agent's reading events -> the real sync bridge process -> Kafka -> the real cloud worker
process -> cloud Postgres -> the REST API; every cloud row's score equals onnxruntime run
directly on the same inputs, one row per reading event, none twice.

The fleet is ``rollout_fleet``'s (real cloud API and edge agent processes); the module adds an
``edgecloud bridge run`` and an ``edgecloud cloud worker`` process on the stack's Kafka, under a
topic prefix of its own. The edge broker's reading events are also watched directly, only to
know which seqs each model served.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import sqlalchemy as sa
from rollout_fleet import Fleet, make_fleet

from edgecloud.adapters.kafka_admin import delete_topics_with_prefix
from edgecloud.adapters.mqtt import MqttConfig, make_publisher, make_subscriber
from edgecloud.bench.bridge import BridgeProc, bridge_env, infra_mqtt
from edgecloud.bench.tensor_models import CLASSES, IMAGE_MEAN, IMAGE_STD, ONNX, write_bundle
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.settings import DEFAULT_GROUP_ID
from edgecloud.core.tensors import encode_binary
from edgecloud.dev import process
from edgecloud.dev.process import wait_until
from edgecloud.dev.stack import Infra

Arrays = dict[str, np.ndarray[Any, Any]]


def arrays_of(kind: str, seq: int) -> Arrays:
    rng = np.random.default_rng(seq)
    if kind == "image":
        return {"image": rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)}
    if kind == "heatmap":
        return {"frame": rng.normal(0, 2, (16, 16)).astype(np.float32)}
    return {
        "emb": rng.normal(0, 0.5, (4, 4)).astype(np.float32),
        "mask": rng.integers(0, 2, (4, 4)).astype(np.int64),
    }


def expected(kind: str, a: Arrays) -> dict[str, Any]:
    """onnxruntime alone on the inputs prepared here, not by edgecloud."""
    sess = ort.InferenceSession(ONNX[kind](), providers=["CPUExecutionProvider"])
    if kind == "image":
        x = (a["image"].astype(np.float32) / 255 - np.float32(IMAGE_MEAN)) / np.float32(IMAGE_STD)
        probs, bright = sess.run(None, {"x": x.transpose(2, 0, 1)[None].astype(np.float32)})
        return {"score": float(bright[0]), "label": CLASSES[int(probs[0].argmax())],
                "confidence": float(probs[0].max())}  # fmt: skip
    if kind == "heatmap":
        (heat,) = sess.run(None, {"frame": a["frame"][None]})
        return {"score": float((heat[0, 0] > 0.9).sum()),
                "confidence": float(np.sort(heat[0].ravel())[-5:].mean())}  # fmt: skip
    (score,) = sess.run(None, {"emb": a["emb"][None], "mask": a["mask"][None]})
    return {"score": float(score[0])}


class TensorDevice:
    """One camera-like device: a reading of the current ``kind`` every 50 ms, odd seqs in the
    binary form, even seqs as nested JSON arrays."""

    def __init__(self, stack: Infra, device: str) -> None:
        user, pw = stack.mqtt_account("admin")
        cfg = MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port, username=user, password=pw)
        self.pub = make_publisher(cfg)
        self.device = device
        self.kind = "pair"
        self.sent: dict[int, tuple[str, Arrays]] = {}
        self.seq = int(time.time() * 1000)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TensorDevice:
        self.pub.start()
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop_event.is_set():
            self.seq += 1
            kind, seq = self.kind, self.seq
            arrays = arrays_of(kind, seq)
            values: dict[str, Any] = {
                k: encode_binary(v) if seq % 2 else v.tolist() for k, v in arrays.items()
            }
            values["lux"] = float(seq % 100)
            self.sent[seq] = (kind, arrays)
            body = {"device_id": self.device, "seq": seq, "ts": time.time(), "values": values}
            self.pub.publish(f"devices/{self.device}/telemetry", json.dumps(body))
            self.stop_event.wait(0.05)

    def stop(self) -> None:
        if self.stop_event.is_set():
            return
        self.stop_event.set()
        self.thread.join(5)
        self.pub.stop()


class ReadingEvents:
    def __init__(self, stack: Infra, node_id: str) -> None:
        user, pw = stack.mqtt_account("admin")
        cfg = MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port, username=user, password=pw)
        self.sub = make_subscriber(cfg, [f"edgecloud/{node_id}/events/reading"],
                                   client_id=f"test-tensor-{uuid.uuid4().hex[:8]}")  # fmt: skip
        self.raw: list[bytes] = []
        self.events: dict[int, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.sub.start()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for m in self.sub.get_batch(500, 0.05):
                body = json.loads(m.payload)
                for ev in body if isinstance(body, list) else [body]:
                    self.events[ev["data"]["seq"]] = ev
                    self.raw.append(json.dumps(ev).encode())
                m.ack()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sub.stop()


def start_worker(stack: Infra, db_url: str, prefix: str, log: Path) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECLOUD_")}
    env.update(
        {
            "EDGECLOUD_DATABASE_URL": db_url,
            **stack.kafka_client("worker").env(),
            "EDGECLOUD_KAFKA_TOPIC_PREFIX": prefix,
            "EDGECLOUD_KAFKA_GROUP_ID": f"{DEFAULT_GROUP_ID}-{prefix}",  # the worker's ACL
            "EDGECLOUD_LOG_FORMAT": "json",
        }
    )
    argv = [sys.executable, "-c", "from edgecloud.cli import main; main()", "cloud", "worker"]
    return process.spawn(argv, log, env=env)


@dataclass
class World:
    fleet: Fleet
    device: TensorDevice
    events: ReadingEvents
    node: str
    bridge: BridgeProc
    worker_log: Path


@pytest.fixture(scope="module")
def world(stack: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("tensor-fleet")
    fleet = make_fleet(stack, tmp)
    node = f"{fleet.tag}-t1"
    prefix = f"t{fleet.tag}."
    stack.kafka_grant(prefix)
    bridge_kafka = stack.kafka_client("bridge")
    env = bridge_env(
        infra_mqtt(stack), bridge_kafka, prefix, node, tmp / "spool", process.free_port()
    )
    bridge = BridgeProc(env, tmp / "bridge.log")
    worker_log = tmp / "worker.log"
    worker = 0
    events = ReadingEvents(stack, node)
    device = TensorDevice(stack, f"{fleet.tag}-cam")
    try:
        bridge.start()
        bridge.wait_ready()
        worker = start_worker(stack, fleet.cloud.db_url, prefix, worker_log)
        device.start()
        fleet.add_node(node, {"fleet": fleet.tag}, None)
        yield World(fleet, device, events, node, bridge, worker_log)
    finally:
        device.stop()
        events.stop()
        bridge.stop()
        if worker:
            process.terminate(worker, timeout=30.0)
        fleet.stop()
        delete_topics_with_prefix(stack.kafka_client(), prefix)
        stack.kafka_revoke(prefix)


def cloud_rows(world: World) -> dict[int, dict[str, Any]]:
    """Every cloud row of the camera, paged through the REST API (oldest first)."""
    rows: dict[int, dict[str, Any]] = {}
    params: dict[str, Any] = {"limit": 1000, "order": "asc"}
    while True:
        page = world.fleet.cloud.call(
            "GET", f"/api/v1/devices/{world.device.device}/readings", "read", params=params
        )
        for r in page["items"]:
            assert r["seq"] not in rows, r  # no reading twice
            rows[r["seq"]] = r
        if not page["next_cursor"]:
            return rows
        params["cursor"] = page["next_cursor"]


def cloud_count(world: World) -> tuple[int, int]:
    """(rows, distinct seqs) of the camera in the cloud's readings table."""
    engine = make_engine(world.fleet.cloud.db_url)
    try:
        with engine.connect() as conn:
            n, distinct = conn.execute(
                sa.text("SELECT count(*), count(DISTINCT seq) FROM readings WHERE device_id = :d"),
                {"d": world.device.device},
            ).one()
    finally:
        engine.dispose()
    return int(n), int(distinct)


def test_three_signatures_push_rollout_readings_cloud(world: World) -> None:
    fleet, device, events, node = world.fleet, world.device, world.events, world.node
    checked: dict[int, str] = {}
    for i, kind in enumerate(["pair", "heatmap", "image"]):
        ref = f"tensor-{kind}:1.0.0"
        body = fleet.cloud.push(write_bundle(fleet.tmp / kind, kind, fleet.key))
        assert body["io"]["inputs"], body
        device.kind = kind
        rid = fleet.cloud.rollout(ref, {"fleet": fleet.tag}, [100], shadow_readings=40)
        final = fleet.cloud.wait_final(rid, 150)
        assert final["state"] == "succeeded", final  # the default agreement / drift gates
        m = final["nodes"][0]["metrics"]
        if i > 0:  # the active model cannot take the new kind: the candidate was gated alone
            assert m["candidate_only"] >= 40 and m["compared"] == 0, m
            assert "agreement" not in m and m["error_rate"] == 0.0, m
        fleet.wait_serving(node, ref)

        def served(kind: str = kind) -> list[int]:
            return [
                seq for seq, ev in list(events.events.items())
                if (ev["data"].get("inference") or {}).get("model") == f"tensor-{kind}"
                and device.sent.get(seq, ("",))[0] == kind
            ]  # fmt: skip

        seqs = wait_until(lambda: len(served()) >= 10 and served(), 60, f"10 {kind} results")
        both_forms = {s % 2 for s in seqs}
        assert both_forms == {0, 1}  # JSON and binary
        for seq in seqs[:10]:
            values = events.events[seq]["data"]["values"]
            assert values == {"lux": float(seq % 100)}  # the result, not the tensor
            checked[seq] = kind

    device.stop()
    sent, last = len(device.sent), max(device.sent)

    def all_in_cloud() -> bool:  # the agent emitted the last reading; the cloud has them all
        return last in events.events and cloud_count(world)[0] == len(events.events)

    wait_until(all_in_cloud, 90, "every emitted reading in the cloud")
    rows = cloud_rows(world)
    n, distinct = cloud_count(world)
    assert n == distinct == len(rows) == len(events.events), (n, distinct, len(rows), sent)
    assert set(rows) == set(events.events)  # exactly the readings the agent emitted
    assert set(rows) <= set(device.sent)
    for seq, kind in checked.items():
        want = expected(kind, device.sent[seq][1])  # onnxruntime alone, not the edge's numbers
        row = rows[seq]
        assert row["model"] == f"tensor-{kind}" and row["node_id"] == node, row
        assert row["score"] == pytest.approx(want["score"], rel=1e-5, abs=1e-6), (kind, row)
        inf = row["inference"]
        if "confidence" in want:
            assert inf["confidence"] == pytest.approx(want["confidence"], rel=1e-5), row
        if "label" in want:
            assert inf["label"] == want["label"], row
        assert row["values"] == {"lux": float(seq % 100)}, row
