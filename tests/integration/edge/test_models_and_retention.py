"""The agent with the real bundled model, with broken / untrusted model files, and retention."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edgeagent_helpers import (
    AgentFactory,
    Db,
    Devices,
    Events,
    features_onnx,
    write_bundle,
)

from edgecloud.core.signing import generate_key
from edgecloud.dev.process import wait_until
from edgecloud.dev.stack import Infra
from edgecloud.sim.data import SENSORS, FleetGenerator
from edgecloud.testing.edge_process import post
from helpers.readings import reading_payload

REPO = Path(__file__).resolve().parents[3]
BUNDLE = REPO / "models" / "bundles" / "sensor-anomaly" / "1.0.0"
DEV_PUB = REPO / "models" / "dev-keys" / "dev.pub"


@pytest.fixture
def db(pg_url: str) -> Db:
    d = Db(pg_url)
    yield d  # type: ignore[misc]
    d.engine.dispose()


def node_id() -> str:
    return f"m-{uuid.uuid4().hex[:6]}"


@pytest.mark.skipif(not BUNDLE.is_dir(), reason="models/bundles/sensor-anomaly not built")
def test_real_bundled_model_scores_readings_and_refuses_unknown_values(
    start_agent: AgentFactory, pg_url: str, db: Db, devices: Devices
) -> None:
    agent = start_agent(node_id(), pg_url, EDGECLOUD_MODEL=str(BUNDLE),
                        EDGECLOUD_OPERATOR_PUBLIC_KEYS=str(DEV_PUB))  # fmt: skip
    model = agent.health()["model"]
    assert (model["state"], model["name"], model["version"]) == (
        "loaded",
        "sensor-anomaly",
        "1.0.0",
    )
    d = f"press-{uuid.uuid4().hex[:6]}"
    fleet = FleetGenerator(1, seed=3, anomaly_rate=0.0)  # normal operation, as trained
    for seq in range(20):
        values, _labels = fleet.step()
        devices.reading(d, seq, **dict(zip(SENSORS, map(float, values[0]), strict=True)))
    devices.reading(d, 20, temperature=250.0, vibration_rms=9.0, pressure=0.1, current=80.0)
    bad = devices.reading(d, 21, temperature=70.0, pressure=3.0)  # no vibration_rms, current
    wait_until(lambda: len(db.readings(d)) == 22, what="22 readings stored")
    rows = db.rows("SELECT seq, anomaly, score, inference->>'model' FROM readings "
                   "WHERE device_id = :d ORDER BY seq", d=d)  # fmt: skip
    assert [r[3] for r in rows[:21]] == ["sensor-anomaly"] * 21
    assert rows[20][1] is True and rows[20][2] > 0.9  # the fault is an anomaly
    assert sum(1 for r in rows[:20] if r[1]) <= 2  # normal readings mostly are not
    assert rows[21][1:] == (None, None, None)  # stored without a result
    [dl] = db.dead_letters(device_id=d)
    assert (dl[0], bytes(dl[2]), dl[5]) == ("inference.value_missing", bad, 21)
    counters = agent.counters()
    assert (counters["inferred"], counters["inference_failures"]) == (21, 1)


@pytest.mark.parametrize("fault", ["garbage_onnx", "untrusted_key", "missing_folder"])
def test_broken_model_agent_runs_without_it_and_reports_it(
    start_agent: AgentFactory, pg_url: str, db: Db, devices: Devices, broker: Infra,
    signing_key: Ed25519PrivateKey, public_key: str, tmp_path: Path, fault: str,
) -> None:  # fmt: skip
    if fault == "garbage_onnx":
        bundle = write_bundle(tmp_path / "b", signing_key, b"\x08\x01 this is not an onnx file")
    elif fault == "untrusted_key":
        bundle = write_bundle(tmp_path / "b", generate_key(), features_onnx())
    else:
        bundle = tmp_path / "nowhere"
    node = node_id()
    events = Events(broker, node)
    try:
        agent = start_agent(node, pg_url, EDGECLOUD_MODEL=str(bundle),
                            EDGECLOUD_OPERATOR_PUBLIC_KEYS=public_key)  # fmt: skip
        health = agent.health()
        assert health["status"] == "degraded"
        assert health["model"]["state"] == "failed" and health["model"]["error"]
        expected = {"garbage_onnx": "ModelRefused", "untrusted_key": "SignatureError",
                    "missing_folder": "InvalidManifest"}[fault]  # fmt: skip
        assert health["model"]["error"].startswith(expected)
        d = f"dev-{uuid.uuid4().hex[:6]}"
        devices.reading(d, 1)
        wait_until(lambda: db.readings(d) == [1], what="reading stored without a model")
        assert db.scalar("SELECT inference FROM readings WHERE device_id = :d", d=d) is None
        code, body = post(agent.url + "/infer", reading_payload(d, 2))
        assert (code, body["error"]) == (503, "no_model")
        hb = wait_until(lambda: events.of_type("heartbeat"), what="heartbeat")[-1]["data"]
        assert hb["active_models"] == [] and hb["model"]["state"] == "failed"
        assert agent.counters()["processed"] == 1
    finally:
        events.stop()


def test_retention_deletes_published_readings_in_chunks(
    start_agent: AgentFactory, pg_url: str, db: Db, devices: Devices
) -> None:
    env = {
        "EDGECLOUD_RETENTION_HOURS": "0.0005",  # 1.8 s
        "EDGECLOUD_RETENTION_INTERVAL_S": "0.5",
        "EDGECLOUD_RETENTION_CHUNK": "7",
    }
    agent = start_agent(node_id(), pg_url, **env)
    d = f"dev-{uuid.uuid4().hex[:6]}"
    for seq in range(30):
        devices.reading(d, seq)
    wait_until(lambda: agent.counters()["processed"] == 30, timeout=60, what="30 stored")
    wait_until(lambda: db.readings(d) == [], timeout=30, what="retention")
    wait_until(lambda: db.scalar("SELECT count(*) FROM outbox") == 0, timeout=10, what="outbox")
    assert agent.counters()["processed"] == 30


def test_bundle_copy_is_independent_of_the_repo(tmp_path: Path) -> None:
    """The committed bundle verifies with the committed dev key from any folder."""
    if not BUNDLE.is_dir():
        pytest.skip("models/bundles/sensor-anomaly not built")
    from edgecloud.edge.inference import load_bundle

    copy = shutil.copytree(BUNDLE, tmp_path / "bundle")
    backend = load_bundle(copy, trusted_keys=str(DEV_PUB))
    assert (backend.ref.name, backend.ref.version) == ("sensor-anomaly", "1.0.0")
    backend.close()
