"""What the real agent (``edgecloud edge run``, real Mosquitto and Postgres) keeps of a
reading's tensor values for each ``EDGECLOUD_TENSOR_STORE`` mode, and what its reading event
carries with ``EDGECLOUD_EVENT_TENSORS``: row contents, checked against hashlib and numpy."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from edgeagent_helpers import AgentFactory, Db, Devices, Events

from edgecloud.core.tensors import encode_binary
from edgecloud.dev.process import wait_until
from edgecloud.dev.stack import Infra

RNG = np.random.default_rng(14)
IMAGE = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)
EMB = RNG.normal(0, 1, (2, 5)).astype(np.float32)  # sent as nested JSON (float32 -> float64)
MASK = RNG.integers(-3, 3, (4, 4)).astype(np.int64)


@pytest.fixture
def db(pg_url: str) -> Iterator[Db]:
    d = Db(pg_url)
    yield d
    d.engine.dispose()


def send(devices: Devices, device: str, seq: int) -> None:
    values: dict[str, Any] = {
        "image": encode_binary(IMAGE),
        "emb": EMB.tolist(),
        "mask": encode_binary(MASK),
        "lux": 3.5,
    }
    body = {"device_id": device, "seq": seq, "ts": time.time(), "values": values}
    devices.send(f"devices/{device}/telemetry", json.dumps(body).encode())


def raw(a: np.ndarray[Any, Any]) -> bytes:
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


EXPECTED = {  # name -> (dtype, shape, raw little-endian bytes)
    "image": ("uint8", [6, 8, 3], raw(IMAGE)),
    "emb": ("float64", [2, 5], raw(EMB.astype(np.float64))),
    "mask": ("int64", [4, 4], raw(MASK)),
}


def run_mode(
    start_agent: AgentFactory, broker: Infra, devices: Devices, db: Db, url: str, **env: str
) -> tuple[list[Any], list[dict[str, Any]]]:
    node = f"ts-{uuid.uuid4().hex[:6]}"
    events = Events(broker, node)
    try:
        agent = start_agent(node, url, **{f"EDGECLOUD_{k}": v for k, v in env.items()})
        device = f"cam-{uuid.uuid4().hex[:6]}"
        for seq in (1, 2):
            send(devices, device, seq)
        wait_until(lambda: agent.counters()["processed"] == 2, timeout=60, what="2 stored")
        got = wait_until(lambda: len(events.of_type("reading")) == 2 and events.of_type("reading"),
                       timeout=30, what="2 reading events")  # fmt: skip
        rows = db.rows(
            'SELECT seq, "values", tensors FROM readings WHERE device_id = :d ORDER BY seq',
            d=device,
        )
        assert db.scalar("SELECT count(*) FROM dead_letters") == 0
        return rows, got
    finally:
        events.stop()


def test_digest_keeps_sha256_dtype_shape_never_bytes(
    start_agent: AgentFactory, broker: Infra, devices: Devices, db: Db, pg_url: str
) -> None:
    rows, events = run_mode(start_agent, broker, devices, db, pg_url)  # the default: digest
    assert [r[0] for r in rows] == [1, 2]
    for _, values, tensors in rows:
        assert values == {"lux": 3.5}
        assert tensors == {
            name: {"dtype": dt, "shape": shape, "sha256": hashlib.sha256(b).hexdigest()}
            for name, (dt, shape, b) in EXPECTED.items()
        }
    assert db.scalar("SELECT count(*) FROM tensor_blobs") == 0
    for ev in events:  # the event carries the result, not the tensor
        assert ev["data"]["values"] == {"lux": 3.5} and "tensors" not in ev["data"]


def test_blob_keeps_the_bytes_and_event_tensors_sends_them(
    start_agent: AgentFactory, broker: Infra, devices: Devices, db: Db, pg_url: str
) -> None:
    rows, events = run_mode(
        start_agent, broker, devices, db, pg_url,
        TENSOR_STORE="blob", EVENT_TENSORS="true",
    )  # fmt: skip
    assert [r[0] for r in rows] == [1, 2] and all(r[1] == {"lux": 3.5} for r in rows)
    blobs = db.rows(
        "SELECT seq, name, dtype, shape, sha256, data FROM tensor_blobs ORDER BY seq, name"
    )
    assert [(b[0], b[1]) for b in blobs] == [(s, n) for s in (1, 2) for n in sorted(EXPECTED)]
    for _, name, dtype, shape, sha, data in blobs:
        want_dtype, want_shape, want_bytes = EXPECTED[name]
        assert (dtype, shape, bytes(data)) == (want_dtype, want_shape, want_bytes)
        assert sha == hashlib.sha256(want_bytes).hexdigest()
        back = np.frombuffer(bytes(data), dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
        if name == "image":
            assert np.array_equal(back, IMAGE)
    assert rows[0][2]["mask"]["sha256"] == hashlib.sha256(raw(MASK)).hexdigest()
    for ev in events:  # EDGECLOUD_EVENT_TENSORS: every tensor in the binary form
        assert ev["data"]["values"] == {"lux": 3.5}
        assert ev["data"]["tensors"] == {
            name: {"dtype": dt, "shape": shape, "b64": base64.b64encode(b).decode()}
            for name, (dt, shape, b) in EXPECTED.items()
        }


def test_none_keeps_nothing(
    start_agent: AgentFactory, broker: Infra, devices: Devices, db: Db, pg_url: str
) -> None:
    rows, _ = run_mode(start_agent, broker, devices, db, pg_url, TENSOR_STORE="none")
    assert [(r[0], r[1], r[2]) for r in rows] == [(1, {"lux": 3.5}, None), (2, {"lux": 3.5}, None)]
    assert db.scalar("SELECT count(*) FROM tensor_blobs") == 0


def test_retention_deletes_blobs_with_their_readings(
    start_agent: AgentFactory, broker: Infra, devices: Devices, db: Db, pg_url: str
) -> None:
    env = {"TENSOR_STORE": "blob", "RETENTION_HOURS": "0.0005", "RETENTION_INTERVAL_S": "0.5"}
    node = f"tr-{uuid.uuid4().hex[:6]}"
    agent = start_agent(node, pg_url, **{f"EDGECLOUD_{k}": v for k, v in env.items()})
    device = f"cam-{uuid.uuid4().hex[:6]}"
    for seq in range(5):
        send(devices, device, seq)
    wait_until(lambda: agent.counters()["processed"] == 5, timeout=60, what="5 stored")
    wait_until(
        lambda: db.scalar("SELECT count(*) FROM readings") == 0, timeout=30, what="retention"
    )
    assert db.scalar("SELECT count(*) FROM tensor_blobs") == 0
