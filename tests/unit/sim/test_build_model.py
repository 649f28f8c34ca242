"""models/build_model.py rebuilds bundles that load, and the bundled models detect faults."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading
from edgecloud.edge.inference import InferenceSettings, load_bundle
from edgecloud.sim.data import SENSORS, generate

REPO = Path(__file__).resolve().parents[3]
AUC_FLOOR = 0.7  # all faults; a stuck sensor is barely visible to a pointwise model
DETECTABLE_FLOOR = 0.9  # spikes, drifts, bearing wear


def build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_model", REPO / "models" / "build_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_model"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bm() -> ModuleType:
    return build_module()


def test_rebuild_gives_loadable_bundles_that_detect_faults(bm: ModuleType, tmp_path: Path) -> None:
    report = bm.build(
        tmp_path / "bundles", tmp_path / "keys", devices=16, steps=1500, eval_steps=500
    )
    assert set(report) == {
        "sensor-anomaly:1.0.0",
        "sensor-anomaly:1.1.0",
        "sensor-anomaly-ewma:1.0.0",
    }
    for ref, metrics in report.items():
        assert metrics["auc"] > AUC_FLOOR, (ref, metrics)
        assert metrics["auc_without_stuck"] > DETECTABLE_FLOOR, (ref, metrics)
    for folder in (tmp_path / "bundles").glob("*/*"):
        sizes = [f.stat().st_size for f in folder.iterdir()]
        assert len(sizes) == 3 and max(sizes) < 8 * 1024


@pytest.mark.parametrize(
    "bundle", ["sensor-anomaly/1.0.0", "sensor-anomaly/1.1.0", "sensor-anomaly-ewma/1.0.0"]
)
def test_committed_bundle_verifies_and_detects_faults(bm: ModuleType, bundle: str) -> None:
    pub = (REPO / "models" / "dev-keys" / "dev.pub").read_text().strip()
    folder = REPO / "models" / "bundles" / bundle
    data = generate(24, 500, seed=4242, anomaly_rate=0.1)
    metrics = bm.evaluate(folder, pub, data)
    assert metrics["auc"] > AUC_FLOOR, metrics
    assert metrics["auc_without_stuck"] > DETECTABLE_FLOOR, metrics


def test_committed_bundle_scores_in_one_run(bm: ModuleType) -> None:
    pub = (REPO / "models" / "dev-keys" / "dev.pub").read_text().strip()
    backend = load_bundle(
        REPO / "models/bundles/sensor-anomaly/1.0.0",
        trusted_keys=[pub],
        settings=InferenceSettings(),
    )
    x = generate(64, 4, seed=1, anomaly_rate=0.0).values.reshape(-1, 4)
    readings = [
        Reading(
            device_id=f"d{i}",
            seq=i,
            ts="2026-01-01T00:00:00Z",
            values=dict(zip(SENSORS, map(float, row), strict=True)),
        )
        for i, row in enumerate(x)
    ]
    out = backend.infer_batch(readings)
    backend.close()
    assert all(isinstance(o, InferenceResult) for o in out)
    results = [o for o in out if isinstance(o, InferenceResult)]
    assert len({o.latency_ms for o in results}) == 1  # 256 readings, one session run
    assert np.mean([o.anomaly for o in results]) < 0.05  # normal data, threshold at p99
    assert len(results[0].outputs["zscore"]) == 4
