"""The batch by columns (``OnnxBackend.infer_batch``) against the reading-by-reading reference
(``OnnxBackend.infer_rows``) and against one reading per call, for every model signature of
``inference_models`` and the shipped bundles (one of them stateful)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from inference_models import audio_model, features_model, fixed_batch_model, model, stateful_model
from onnx import TensorProto, helper

from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading
from edgecloud.edge.inference import InferenceBackend, InferenceFailure, load_bundle
from edgecloud.edge.inference.onnx_backend import OnnxBackend
from edgecloud.edge.inference.port import Outcome
from edgecloud.edge.inference.settings import InferenceSettings
from helpers.readings import reading

BundleMaker = Callable[..., Path]
Loader = Callable[..., InferenceBackend]
NAMES = ["temperature", "vibration_rms", "pressure", "current"]
BUNDLES = Path(__file__).resolve().parents[4] / "models" / "bundles"
DEV_KEY = BUNDLES.parent / "dev-keys" / "dev.pub"


def onnx_backend(backend: InferenceBackend) -> OnnxBackend:
    assert isinstance(backend, OnnxBackend)
    return backend


def comparable(outcome: Outcome) -> Any:
    """Everything of an outcome but the run's latency."""
    if isinstance(outcome, InferenceFailure):
        return outcome
    assert type(outcome) is InferenceResult
    return {k: v for k, v in outcome.__dict__.items() if k != "latency_ms"}


def assert_same(fast: Sequence[Outcome], ref: Sequence[Outcome]) -> None:
    assert len(fast) == len(ref)
    for i, (f, r) in enumerate(zip(fast, ref, strict=True)):
        assert comparable(f) == comparable(r), i
        if isinstance(f, InferenceResult):
            assert isinstance(r, InferenceResult)
            # built without pydantic: the same object model_construct makes, the same JSON
            assert f == InferenceResult.model_construct(**f.__dict__)
            assert f.__pydantic_fields_set__ == set(InferenceResult.model_fields)
            # json_text writes the field dict: every field, in pydantic's order
            assert f.json_text() == orjson.dumps(f.model_dump()).decode()
            assert r.json_text() == orjson.dumps(r.model_dump()).decode()
            assert all(type(v) is bool for v in (f.anomaly, f.escalate))


def assert_close(batched: Sequence[Outcome], single: Sequence[Outcome]) -> None:
    """Equal up to float rounding of a batched run against runs of one reading."""
    for i, (b, s) in enumerate(zip(batched, single, strict=True)):
        if isinstance(b, InferenceFailure):
            assert b == s, i
            continue
        assert isinstance(s, InferenceResult), i
        assert (b.model, b.version, b.label, b.anomaly, b.escalate) == (
            s.model, s.version, s.label, s.anomaly, s.escalate,
        ), i  # fmt: skip
        for field in ("score", "confidence"):
            got, want = getattr(b, field), getattr(s, field)
            assert (got is None) == (want is None), (i, field)
            if got is not None:
                assert got == pytest.approx(want, rel=1e-6, abs=1e-7), (i, field)
        assert b.outputs.keys() == s.outputs.keys()
        for k in b.outputs:
            assert np.allclose(b.outputs[k], s.outputs[k], rtol=1e-6, atol=1e-7), (i, k)


def check(
    load: Callable[[], InferenceBackend],
    batches: Sequence[Sequence[Reading]],
    *,
    vectorised: bool = True,
) -> list[Outcome]:
    """Three fresh backends see the same batches: by columns, by rows, one reading a call."""
    fast, rows, single = (onnx_backend(load()) for _ in range(3))
    out: list[Outcome] = []
    for batch in batches:
        assert (fast.plan.dynamic and fast.plan.columns(batch) is not None) == vectorised
        got = fast.infer_batch(batch)
        assert_same(got, rows.infer_rows(batch))
        assert_close(got, [single.infer_batch([r])[0] for r in batch])
        out.extend(got)
    for name in fast._states:  # state fed back per device: the same after every path
        for key, value in fast._states[name].items():
            np.testing.assert_array_equal(value, rows._states[name][key])
            np.testing.assert_allclose(value, single._states[name][key], rtol=1e-6, atol=1e-6)
    assert fast._states.keys() == rows._states.keys() == single._states.keys()
    return out


def features(rng: np.random.Generator, n: int, devices: int = 7) -> list[Reading]:
    x = rng.normal(0, 2, size=(n, 4))
    return [
        reading(f"d{i % devices}", i, **dict(zip(NAMES, map(float, row), strict=True)))
        for i, row in enumerate(x)
    ]


@pytest.mark.parametrize("max_batch", [1024, 7])
def test_features_score_label_confidence(
    make_bundle: BundleMaker, load: Loader, max_batch: int
) -> None:
    folder = make_bundle(
        features_model(),
        {"features": {"from": "values", "names": NAMES}},
        {
            "score": {"output": "score"},
            "label": {"output": "probs", "reduce": "argmax", "classes": ["normal", "anomaly"]},
            "confidence": {"output": "probs", "reduce": "max"},
        },
        {"anomaly": {"score_above": 0.7}, "escalate": {"confidence_below": 0.6}},
    )
    rng = np.random.default_rng(11)
    batches = [features(rng, 300), features(rng, 1), features(rng, 50)]
    out = check(lambda: load(folder, inference_max_batch=max_batch), batches)
    results = [r for r in out if isinstance(r, InferenceResult)]
    assert len(results) == 351
    assert {r.anomaly for r in results} == {True, False}
    assert {r.escalate for r in results} == {True, False}
    assert {r.label for r in results} == {"normal", "anomaly"}


def test_index_output_label_in_and_integer_values(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(
        features_model(),
        {"features": {"from": "values", "names": NAMES}},
        {
            "score": {"output": "probs", "index": 1},
            "label": {"output": "probs", "reduce": "argmax"},
        },
        {"anomaly": {"label_in": [1]}, "escalate": {"score_above": 0.9, "label_in": ["x"]}},
    )
    rng = np.random.default_rng(12)
    batch = features(rng, 40)
    batch += [reading("i", 1, temperature=3, vibration_rms=-2, pressure=5, current=0)]
    out = check(lambda: load(folder), [batch])
    assert {r.label for r in out if isinstance(r, InferenceResult)} == {0, 1}


def test_missing_value_in_the_batch_takes_the_reference_path(
    make_bundle: BundleMaker, load: Loader
) -> None:
    folder = make_bundle(
        features_model(),
        {"features": {"from": "values", "names": NAMES}},
        {"score": {"output": "score"}},
    )
    rng = np.random.default_rng(13)
    good = features(rng, 10)
    for bad in (
        reading("x", 1, temperature=1.0, vibration_rms=1.0, pressure=1.0),
        reading("x", 2, temperature=1.0, vibration_rms=1.0, pressure=[1.0], current=1.0),
    ):
        out = check(lambda: load(folder), [[*good, bad]], vectorised=False)
        assert isinstance(out[-1], InferenceFailure)
    # every named value an array of the same length: still not a number each
    arrays = [reading("y", i, **{k: [1.0, 2.0] for k in NAMES}) for i in range(3)]
    out = check(lambda: load(folder), [arrays], vectorised=False)
    assert all(isinstance(o, InferenceFailure) and o.reason == "wrong_type" for o in out)


def test_array_input_with_constant(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(
        audio_model(),
        {
            "audio": {"from": "array", "value": "audio"},
            "sample_rate": {"from": "constant", "value": 32000, "dtype": "int64"},
        },
        {"score": "level"},
        {"anomaly": {"score_above": 1.0}},
    )
    rng = np.random.default_rng(14)
    same = [reading("mic", i, audio=rng.normal(0, i % 3, 64).tolist()) for i in range(20)]
    mixed = [*same[:5], reading("mic", 99, audio=rng.normal(0, 1, 100).tolist())]
    check(lambda: load(folder), [same])
    check(lambda: load(folder), [mixed], vectorised=False)  # lengths differ: grouped by rows
    numbers = [reading("mic", i, audio=float(i)) for i in range(3)]
    out = check(lambda: load(folder), [numbers], vectorised=False)
    assert all(isinstance(o, InferenceFailure) and o.reason == "wrong_type" for o in out)


def test_static_array_length(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(
        audio_model(frame=8),
        {
            "audio": {"from": "array", "value": "audio"},
            "sample_rate": {"from": "constant", "value": [16000], "dtype": "int64"},
        },
        {"score": "level"},
    )
    good = [reading("m", i, audio=[float(i)] * 8) for i in range(5)]
    check(lambda: load(folder), [good])
    out = check(lambda: load(folder), [[*good, reading("m", 9, audio=[1.0] * 9)]], vectorised=False)
    assert isinstance(out[-1], InferenceFailure) and out[-1].reason == "wrong_shape"


@pytest.mark.parametrize("max_batch", [1024, 2])
@pytest.mark.parametrize("initial", [[1.0, 0.0, -1.0], {"zeros": [3]}])
def test_stateful_several_readings_of_one_device_in_a_batch(
    make_bundle: BundleMaker, load: Loader, max_batch: int, initial: Any
) -> None:
    folder = make_bundle(
        stateful_model(),
        {
            "x": {"from": "values", "names": ["a", "b"]},
            "h_in": {"from": "state", "output": "h_out", "initial": initial},
        },
        {"score": "score"},
        {"anomaly": {"score_above": 1.0}},
    )
    rng = np.random.default_rng(15)
    orders = [list("pqprpqpp"), list("qpp"), list("abcdefg"), list("zzzz")]
    seq = iter(range(1000))
    batches = [
        [reading(d, next(seq), a=float(rng.normal()), b=float(rng.normal())) for d in order]
        for order in orders
    ]
    out = check(lambda: load(folder, inference_max_batch=max_batch), batches)
    assert all(isinstance(o, InferenceResult) and "h_out" not in o.outputs for o in out)


def test_fixed_batch_model_is_not_vectorised(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(
        fixed_batch_model(),
        {"input_1:0": {"from": "values", "names": ["u", "v", "w"]}},
        {"score": {"output": "out/score:0"}},
        {"anomaly": {"score_above": 10}},
    )
    batch = [reading("d", i, u=float(i), v=2.0, w=1.0) for i in range(12)]
    check(lambda: load(folder), [batch], vectorised=False)


def test_non_finite_outputs_fail_only_their_reading(make_bundle: BundleMaker, load: Loader) -> None:
    sqrt = model(
        [
            helper.make_node("Sqrt", ["x"], ["root"]),
            helper.make_node("Concat", ["root", "x"], ["both"], axis=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [
            helper.make_tensor_value_info("root", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("both", TensorProto.FLOAT, ["N", 2]),
        ],
    )
    folder = make_bundle(
        sqrt,
        {"x": {"from": "values", "names": ["v"]}},
        {"score": "root", "confidence": {"output": "both", "index": 0}},
        {"anomaly": {"score_above": 2.5}, "escalate": {"confidence_below": 2.5}},
    )
    batch = [reading("d", i, v=v) for i, v in enumerate([4.0, -1.0, 9.0, 0.0, -4.0])]
    out = check(lambda: load(folder), [batch])
    assert [isinstance(o, InferenceFailure) for o in out] == [False, True, False, False, True]
    assert isinstance(out[1], InferenceFailure) and out[1].detail == "confidence is nan"
    ok = out[2]
    assert isinstance(ok, InferenceResult) and ok.outputs == {"root": 3.0, "both": [3.0, 9.0]}


def test_output_that_cannot_be_mapped_fails_the_run(make_bundle: BundleMaker, load: Loader) -> None:
    dyn = model(
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "K"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "K"])],
    )
    folder = make_bundle(dyn, {"x": {"from": "array", "value": "a"}}, {"score": "y"})
    out = check(lambda: load(folder), [[reading("d", i, a=[1.0, 2.0]) for i in range(4)]])
    assert all(isinstance(o, InferenceFailure) and o.reason == "bad_output" for o in out)


@pytest.mark.parametrize(
    "bundle", ["sensor-anomaly/1.0.0", "sensor-anomaly/1.1.0", "sensor-anomaly-ewma/1.0.0"]
)
def test_shipped_bundles(bundle: str) -> None:
    def go() -> InferenceBackend:
        return load_bundle(
            BUNDLES / bundle, trusted_keys=[str(DEV_KEY)], settings=InferenceSettings()
        )

    rng = np.random.default_rng(16)
    centre = np.array([70.0, 0.4, 3.0, 12.0])
    spread = np.array([2.0, 0.05, 0.1, 0.5]) * rng.choice([1.0, 6.0], size=(300, 1))
    x = centre + rng.normal(size=(300, 4)) * spread
    # 10 devices, 30 readings each in one batch (the stateful one runs 30 rounds)
    batch = [
        reading(f"m{i % 10}", i, **dict(zip(NAMES, map(float, row), strict=True)))
        for i, row in enumerate(x)
    ]
    out = check(go, [batch[:200], batch[200:]])
    assert {o.anomaly for o in out if isinstance(o, InferenceResult)} == {True, False}
