"""The ONNX backend against real onnxruntime sessions, numbers checked against numpy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from inference_models import (
    B4,
    DECAY,
    W4,
    W_STATE,
    audio_model,
    features_model,
    fixed_batch_model,
    stateful_model,
)

from edgecloud.core.events import InferenceResult
from edgecloud.edge.inference import InferenceBackend, InferenceFailure
from helpers.readings import reading

BundleMaker = Callable[..., Path]

Loader = Callable[..., InferenceBackend]
NAMES = ["temperature", "vibration_rms", "pressure", "current"]


def ok(outcome: object) -> InferenceResult:
    assert isinstance(outcome, InferenceResult), outcome
    return outcome


def sigmoid(z: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture
def features_bundle(make_bundle: BundleMaker) -> Path:
    return make_bundle(
        features_model(),
        {"features": {"from": "values", "names": NAMES}},
        {
            "score": {"output": "score"},
            "label": {"output": "probs", "reduce": "argmax", "classes": ["normal", "anomaly"]},
            "confidence": {"output": "probs", "reduce": "max"},
        },
        {"anomaly": {"score_above": 0.7}, "escalate": {"confidence_below": 0.6}},
    )


def test_scalar_features_batch_matches_numpy(features_bundle: Path, load: Loader) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, size=(300, 4))
    readings = [
        reading(f"d{i % 7}", i, **dict(zip(NAMES, map(float, row), strict=True)))
        for i, row in enumerate(x)
    ]
    backend = load(features_bundle, inference_max_batch=128)
    results = [ok(r) for r in backend.infer_batch(readings)]
    expected = sigmoid(x.astype(np.float32) @ W4 + B4).ravel()
    got = np.array([r.score for r in results])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for r, s in zip(results, expected, strict=True):
        assert r.label == ("anomaly" if s > 0.5 else "normal")
        assert r.confidence == pytest.approx(max(s, 1 - s), abs=1e-6)
        assert r.anomaly == (s > 0.7)
        assert r.escalate == (max(s, 1 - s) < 0.6)
        assert r.outputs["probs"] == pytest.approx([1 - s, s], abs=1e-6)
        assert (r.model, r.version) == ("test-model", "1.0.0")
    assert any(r.anomaly for r in results) and not all(r.anomaly for r in results)
    # 300 readings, max batch 128: three session runs, each shared by its readings
    assert len({r.latency_ms for r in results}) == 3
    assert backend.ref.name == "test-model"
    backend.close()


def test_missing_and_wrong_type_values_fail_per_reading(
    features_bundle: Path, load: Loader
) -> None:
    good = dict.fromkeys(NAMES, 1.0)
    batch = [
        reading("a", 1, **good),
        reading("a", 2, temperature=1.0, vibration_rms=1.0, pressure=1.0),
        reading("a", 3, **{**good, "pressure": [1.0, 2.0]}),
        reading("a", 4, **good, extra=5.0),
    ]
    out = load(features_bundle).infer_batch(batch)
    assert isinstance(out[1], InferenceFailure) and out[1].reason == "value_missing"
    assert "current" in out[1].detail
    assert isinstance(out[2], InferenceFailure) and out[2].reason == "wrong_type"
    assert ok(out[0]).score == pytest.approx(ok(out[3]).score)
    expected = float(sigmoid(np.ones((1, 4), np.float32) @ W4 + B4)[0, 0])
    assert ok(out[0]).score == pytest.approx(expected, rel=1e-6)


def test_array_with_int64_constant(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(
        audio_model(),
        {
            "audio": {"from": "array", "value": "audio"},
            "sample_rate": {"from": "constant", "value": 32000, "dtype": "int64"},
        },
        {"score": "level"},
        {"anomaly": {"score_above": 1.0}},
    )
    rng = np.random.default_rng(2)
    frames = [
        rng.normal(0, s, size=n).tolist() for s, n in [(0.1, 64), (1.0, 64), (0.5, 100), (2.0, 64)]
    ]
    out = load(folder).infer_batch([reading("mic", i, audio=f) for i, f in enumerate(frames)])
    results = [ok(r) for r in out]
    for r, f in zip(results, frames, strict=True):
        a = np.asarray(f, np.float32)
        assert r.score == pytest.approx(float(np.sqrt(np.mean(a * a)) * 2.0), rel=1e-5)
        assert r.anomaly == (r.score > 1.0)
    # frames of 64 share a run; the 100-sample frame ran on its own
    assert results[0].latency_ms == results[1].latency_ms == results[3].latency_ms
    assert results[2].latency_ms != results[0].latency_ms


def test_array_static_length_and_scalar_given(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(
        audio_model(frame=8),
        {
            "audio": {"from": "array", "value": "audio"},
            "sample_rate": {"from": "constant", "value": [16000], "dtype": "int64"},
        },
        {"score": "level"},
    )
    out = load(folder).infer_batch(
        [
            reading("m", 1, audio=[1.0] * 8),
            reading("m", 2, audio=[1.0] * 9),
            reading("m", 3, audio=2.0),
        ]
    )
    assert ok(out[0]).score == pytest.approx(1.0)
    assert isinstance(out[1], InferenceFailure) and out[1].reason == "wrong_shape"
    assert isinstance(out[2], InferenceFailure) and out[2].reason == "wrong_type"


def test_stateful_model_feeds_state_back_per_device(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(
        stateful_model(),
        {
            "x": {"from": "values", "names": ["a", "b"]},
            "h_in": {"from": "state", "output": "h_out", "initial": [1.0, 0.0, -1.0]},
        },
        {"score": "score"},
        {"anomaly": {"score_above": 3.0}},
    )
    backend = load(folder)
    rng = np.random.default_rng(3)
    # device p appears three times in one batch, q twice, r once; then a second batch
    order = ["p", "q", "p", "r", "p", "q"]
    batches = [order, ["q", "p", "p"]]
    h = {d: np.array([1.0, 0.0, -1.0], np.float32) for d in "pqr"}
    seq = 0
    for devices in batches:
        xs = rng.normal(size=(len(devices), 2)).astype(np.float32)
        batch = [
            reading(d, (seq := seq + 1), a=float(x[0]), b=float(x[1]))
            for d, x in zip(devices, xs, strict=True)
        ]
        results = [ok(r) for r in backend.infer_batch(batch)]
        for d, x, r in zip(devices, xs, results, strict=True):
            h[d] = DECAY * h[d] + x @ W_STATE
            assert r.score == pytest.approx(float(h[d].sum()), rel=1e-5, abs=1e-5)
            assert r.anomaly == (r.score > 3.0)
            assert "h_out" not in r.outputs
    backend.close()


def test_state_initial_zeros_and_state_lru(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(
        stateful_model(),
        {
            "x": {"from": "values", "names": ["a", "b"]},
            "h_in": {"from": "state", "output": "h_out", "initial": {"zeros": [3]}},
        },
        {"score": "score"},
    )
    backend = load(folder, inference_max_state_devices=2)
    first = [ok(r).score for r in backend.infer_batch([reading(d, 1, a=1.0, b=1.0) for d in "xyz"])]
    assert first == pytest.approx([3.0, 3.0, 3.0])  # x@W summed: 1.5 + 1.5
    # x was evicted (only 2 devices kept): it starts from zeros again; z continues
    again = [
        ok(r).score
        for r in backend.infer_batch([reading("z", 2, a=1.0, b=1.0), reading("x", 2, a=1.0, b=1.0)])
    ]
    assert again == pytest.approx([4.5, 3.0])


def test_fixed_batch_model_runs_per_reading(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(
        fixed_batch_model(),
        {"input_1:0": {"from": "values", "names": ["u", "v", "w"]}},
        {"score": {"output": "out/score:0"}},
        {"anomaly": {"score_above": 10}},
    )
    backend = load(folder)
    batch = [reading("d", i, u=float(i), v=2.0, w=1.0) for i in range(5)]
    results = [ok(r) for r in backend.infer_batch(batch)]
    assert [r.score for r in results] == pytest.approx([i + 4.0 - 1.0 for i in range(5)])
    assert [r.anomaly for r in results] == [False, False, False, False, False]
    assert ok(backend.infer_batch([reading("d", 9, u=20.0, v=0.0, w=0.0)])[0]).anomaly


def test_label_in_decision_and_index_output(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(
        features_model(),
        {"features": {"from": "values", "names": NAMES}},
        {
            "score": {"output": "probs", "index": 1},
            "label": {"output": "probs", "reduce": "argmax", "classes": ["ok", "bad"]},
        },
        {"anomaly": {"label_in": ["bad"]}, "escalate": {"score_above": 0.99}},
    )
    hi = dict(zip(NAMES, [10.0, 0.0, 10.0, 0.0], strict=True))
    lo = dict(zip(NAMES, [-10.0, 0.0, -10.0, 0.0], strict=True))
    a, b = (ok(r) for r in load(folder).infer_batch([reading("d", 1, **hi), reading("d", 2, **lo)]))
    assert a.label == "bad" and a.anomaly and a.escalate and a.score > 0.99
    assert b.label == "ok" and not b.anomaly and not b.escalate


def test_non_finite_score_fails_only_that_reading(make_bundle: BundleMaker, load: Loader) -> None:
    from inference_models import model
    from onnx import TensorProto, helper

    sqrt = model(
        [helper.make_node("Sqrt", ["x"], ["root"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("root", TensorProto.FLOAT, ["N", 1])],
    )
    folder = make_bundle(sqrt, {"x": {"from": "values", "names": ["v"]}}, {"score": "root"})
    out = load(folder).infer_batch(
        [reading("d", 1, v=4.0), reading("d", 2, v=-1.0), reading("d", 3, v=9.0)]
    )
    assert ok(out[0]).score == 2.0 and ok(out[2]).score == 3.0
    assert isinstance(out[1], InferenceFailure) and out[1].reason == "bad_output"
    assert ok(out[0]).outputs == {"root": 2.0}
