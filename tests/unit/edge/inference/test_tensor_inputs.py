"""Tensor inputs of any rank (JSON and binary forms), image preprocessing, output reductions:
every result equals onnxruntime run directly on the same, independently prepared inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgecloud.bench.tensor_models import CLASSES, IMAGE_MEAN, IMAGE_STD, ONNX, write_bundle
from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading, parse_reading
from edgecloud.core.tensors import encode_binary
from edgecloud.edge.inference import InferenceBackend, InferenceFailure, ModelRefused
from helpers.readings import reading_payload

Loader = Callable[[Path], InferenceBackend]


def parsed(seq: int, values: dict[str, Any], device: str = "cam-1") -> Reading:
    """A camera reading as the agent gets it: its payload through the real parser."""
    payload = reading_payload(device, seq, 1795312800.0 + seq, **values)
    return parse_reading(f"devices/{device}/telemetry", payload, 1 << 24)


def ort_run(kind: str, feeds: dict[str, np.ndarray[Any, Any]]) -> dict[str, Any]:
    sess = ort.InferenceSession(ONNX[kind](), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def ok(outcome: Any) -> InferenceResult:
    assert isinstance(outcome, InferenceResult), outcome
    return outcome


@pytest.fixture
def bundle(tmp_path: Path, signing_key: Ed25519PrivateKey) -> Callable[..., Path]:
    def make(kind: str, **kw: Any) -> Path:
        return write_bundle(tmp_path / f"{kind}-{len(list(tmp_path.iterdir()))}", kind,
                            signing_key, **kw)  # fmt: skip

    return make


def test_image_hwc_uint8_with_mean_std_equals_onnxruntime(bundle: Any, load: Loader) -> None:
    backend = load(bundle("image"))
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in
              [(24, 32), (24, 32), (40, 20), (24, 32)]]  # fmt: skip
    readings = [
        parsed(i, {"image": encode_binary(img) if i % 2 else img.tolist(), "lux": 3.0})
        for i, img in enumerate(images)
    ]
    assert readings[0].values == {"lux": 3.0} and readings[0].tensors["image"].shape == [24, 32, 3]
    outcomes = backend.infer_batch(readings)
    for img, out in zip(images, outcomes, strict=True):
        x = (img.astype(np.float32) / 255 - np.float32(IMAGE_MEAN)) / np.float32(IMAGE_STD)
        want = ort_run("image", {"x": x.transpose(2, 0, 1)[None].astype(np.float32)})
        got = ok(out)
        assert got.score == pytest.approx(float(want["brightness"][0]), rel=1e-5)
        assert got.label == CLASSES[int(want["probs"][0].argmax())]
        assert got.confidence == pytest.approx(float(want["probs"][0].max()), rel=1e-5)
        assert got.outputs["probs"] == pytest.approx(want["probs"][0].tolist(), rel=1e-5)
        assert got.anomaly == (got.label == "car")


def test_image_resize_and_bgr(bundle: Any, load: Loader) -> None:
    pre = {"resize": [8, 8], "channel_order": "bgr", "scale": 0.5}
    changes = {"inputs": {"x": {"from": "tensor", "value": "image", "layout": "HWC",
                                "preprocess": pre}}}  # fmt: skip
    backend = load(bundle("image", changes=changes))
    img = np.arange(4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
    got = ok(backend.infer_batch([parsed(1, {"image": img.tolist()})])[0])
    # 2x bilinear upsampling keeps the per-channel means; bgr reverses the channels
    x = (img[..., ::-1] * 0.5).mean(axis=(0, 1))
    want = ort_run("image", {"x": np.broadcast_to(x[:, None, None], (1, 3, 8, 8)).astype("f4")})
    assert got.outputs["probs"] == pytest.approx(want["probs"][0].tolist(), rel=1e-5)


def test_rank3_output_map_count_and_topk(bundle: Any, load: Loader) -> None:
    backend = load(bundle("heatmap"))
    rng = np.random.default_rng(3)
    frames = [rng.normal(0, 2, (16, 16)).astype(np.float32) for _ in range(3)]
    values = [{"frame": f.tolist()} for f in frames[:2]] + [{"frame": encode_binary(frames[2])}]
    outcomes = backend.infer_batch([parsed(i, v) for i, v in enumerate(values)])
    for f, out in zip(frames, outcomes, strict=True):
        heat = ort_run("heatmap", {"frame": f[None].astype(np.float64).astype("f4")})["heat"][0]
        got = ok(out)
        assert got.score == float((heat[0] > 0.9).sum())
        assert got.confidence == pytest.approx(float(np.sort(heat.ravel())[-5:].mean()), 1e-6)
        assert got.outputs == {}  # the map itself does not go into the event
    assert len({ok(o).score for o in outcomes}) > 1


def test_two_tensor_inputs_of_different_dtypes(bundle: Any, load: Loader) -> None:
    backend = load(bundle("pair"))
    rng = np.random.default_rng(5)
    emb = rng.normal(0, 1, (4, 4)).astype(np.float32)
    mask = rng.integers(0, 2, (4, 4)).astype(np.int64)
    forms = [
        {"emb": emb.tolist(), "mask": mask.tolist()},
        {"emb": encode_binary(emb), "mask": encode_binary(mask)},
    ]
    outcomes = backend.infer_batch([parsed(i, v) for i, v in enumerate(forms)])
    want = ort_run("pair", {"emb": emb[None], "mask": mask[None]})["score"][0]
    for out in outcomes:
        assert ok(out).score == pytest.approx(float(want), rel=1e-6)


def test_wrong_shape_and_dtype_are_failures_with_reasons(bundle: Any, load: Loader) -> None:
    backend = load(bundle("pair"))
    emb, mask = np.zeros((4, 4), np.float32), np.ones((4, 4), np.int64)
    bad = [
        {"emb": np.zeros((4, 5)).tolist(), "mask": mask.tolist()},
        {"emb": emb.tolist(), "mask": (mask * 0.5).tolist()},
        {"emb": emb.tolist()},
        {"emb": [1.0, 2.0], "mask": mask.tolist()},
        {"emb": emb.tolist(), "mask": mask.tolist()},
    ]
    outcomes = backend.infer_batch([parsed(i, v) for i, v in enumerate(bad)])
    reasons = [o.reason if isinstance(o, InferenceFailure) else "ok" for o in outcomes]
    assert reasons == ["wrong_shape", "wrong_dtype", "value_missing", "wrong_type", "ok"]
    assert "[4, 5]" in outcomes[0].detail  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "changes", "reason"),
    [
        ("pair", {"inputs": {"emb": {"from": "tensor", "value": "emb"}}}, "input_not_covered"),
        ("pair", {"inputs": {"emb": {"from": "tensor", "value": "emb"},
                             "mask": {"from": "tensor", "value": "m", "dtype": "int32"}}},
         "dtype"),
        ("image", {"inputs": {"x": {"from": "tensor", "value": "image", "layout": "HWC",
                                    "preprocess": {"mean": [0.5, 0.5]}}}}, "shape"),
        ("heatmap", {"inputs": {"frame": {"from": "tensor", "value": "f", "layout": "HWC"}}},
         "shape"),
        ("heatmap", {"outputs": {"score": {"output": "heat", "axis": 5, "index": 0,
                                           "reduce": "max"}}}, "shape"),
    ],
)  # fmt: skip
def test_refused_at_load(bundle: Any, load: Loader, kind: str, changes: Any, reason: str) -> None:
    with pytest.raises(ModelRefused) as info:
        load(bundle(kind, changes=changes))
    assert info.value.reason == reason
