"""The trainer in the package builds the shipped bundles (graph byte for byte, weights to
within 1e-12), and its temporal model
catches the stuck sensors the pointwise one cannot (through the agent's own inference path)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import yaml

from edgecloud.core.readings import Reading
from edgecloud.core.signing import load_private_key, public_key_b64, write_keypair
from edgecloud.edge.inference import InferenceSettings, load_bundle
from edgecloud.learning import trainer
from edgecloud.sim.data import FAULTS, SENSORS, Dataset, generate

BUNDLES = Path(__file__).resolve().parents[3] / "models" / "bundles"
DECISION = {"anomaly": {"score_above": 0.5}, "escalate": {"score_above": 0.9}}


def test_the_shipped_1_0_0_model_comes_out_of_the_package_trainer() -> None:
    """The same graph byte for byte and the same weights up to the last bits of the linear
    algebra: a fresh install of 2026-12-04 (numpy 2.4.6) gave W 4.6e-16 away from the shipped
    file, so its sha256 differed though every operator, name and shape was the same."""
    import onnx
    from onnx import numpy_helper

    data = generate(96, 1500, seed=7, anomaly_rate=0.0)
    x, _, _ = data.flat()
    model = trainer.export(trainer.train(x, 0.99, shape=data.values.shape[:2]), stateful=False)
    folder = BUNDLES / "sensor-anomaly" / "1.0.0"
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    shipped_bytes = (folder / "model.onnx").read_bytes()
    assert hashlib.sha256(shipped_bytes).hexdigest() == manifest["sha256"]
    shipped = onnx.load_from_string(shipped_bytes)
    got = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    want = {i.name: numpy_helper.to_array(i) for i in shipped.graph.initializer}
    assert list(got) == list(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        np.testing.assert_allclose(got[name], value, rtol=1e-12, atol=1e-12, err_msg=name)
    for m in (model, shipped):  # the rest, initializer values aside, byte for byte
        for i in m.graph.initializer:
            i.ClearField("raw_data")
            i.ClearField("float_data")
            i.ClearField("double_data")
            i.ClearField("int64_data")
    assert model.SerializeToString() == shipped.SerializeToString()


def _rates(folder: Path, pub: str, data: Dataset, kind: str) -> tuple[float, float]:
    """(recall on ``kind``, false-positive rate on normal readings) of the loaded bundle."""
    backend = load_bundle(folder, trusted_keys=[pub], settings=InferenceSettings())
    n_dev, n_steps, _ = data.values.shape
    flagged = np.zeros((n_dev, n_steps), bool)
    for t in range(n_steps):
        batch = [
            Reading(device_id=f"d{d}", seq=t, ts="2026-01-01T00:00:00Z",
                    values=dict(zip(SENSORS, map(float, data.values[d, t]), strict=True)))
            for d in range(n_dev)
        ]  # fmt: skip
        for d, out in enumerate(backend.infer_batch(batch)):
            flagged[d, t] = bool(getattr(out, "anomaly", False))
    backend.close()
    mask = data.fault == FAULTS.index(kind)
    assert mask.sum() > 50, "the seeded data has stuck faults"
    return float(flagged[mask].mean()), float(flagged[data.fault == 0].mean())


def test_the_temporal_model_sees_stuck_sensors_the_pointwise_one_misses(tmp_path: Path) -> None:
    key = write_keypair(tmp_path / "keys", "t")[0]
    pub = public_key_b64(load_private_key(key))
    # 5-minute steps: 300 of them cover the daily load cycle (the same devices as ``test``)
    normal = generate(16, 300, seed=3, anomaly_rate=0.0, dt_s=300.0)
    x, _, _ = normal.flat()
    series = [np.round(normal.values[d], 4) for d in range(16)]
    params = trainer.train(x, 0.99, max_run=trainer.longest_repeat_run(series))
    assert params.k_run >= 0.5
    test = generate(16, 600, seed=3, anomaly_rate=0.3, dt_s=300.0)
    test.values = np.round(test.values, 4)  # as the simulator publishes them
    point = trainer.write_bundle(
        tmp_path / "p", "m", "1.0.0", trainer.export(params, False), DECISION, False, {}, key
    )
    temporal = trainer.write_bundle(
        tmp_path / "t", "m", "1.1.0", trainer.export(params, True, temporal=True), DECISION,
        True, {}, key, temporal=True,
    )  # fmt: skip
    point_stuck, point_fp = _rates(point, pub, test, "stuck")
    temporal_stuck, temporal_fp = _rates(temporal, pub, test, "stuck")
    assert point_stuck < 0.4
    assert temporal_stuck > 0.9
    assert temporal_fp < point_fp + 0.01  # the run-length part adds almost no false positives
