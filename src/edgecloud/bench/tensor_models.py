"""Tensor-input models for the tests and ``bench edge --model image`` (``adapters/onnx_graph``).

Three signatures no earlier bundle had:

- ``image``: x float32 [N,3,H,W] (N, H, W dynamic) -> probs [N,4] (softmax of the channel
  means times W), brightness [N] (sigmoid of the mean); the manifest maps an HWC uint8
  ``image`` value with scale + mean/std preprocessing.
- ``heatmap``: frame float32 [N,16,16] -> heat [N,2,16,16] (sigmoid of frame and -frame), a
  rank-3 output map per reading; score = cells of channel 0 over 0.9, confidence = top-5 mean.
- ``pair``: emb float32 [N,4,4] and mask int64 [N,4,4] -> score [N] = sigmoid(sum(emb*mask)).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgecloud.adapters import onnx_graph as og
from edgecloud.core.signing import sign_bundle

F, I64 = og.FLOAT, og.INT64
IMAGE_W = np.array(
    [[1.0, -1.0, 0.5, 0.0], [0.0, 1.0, -0.5, 0.25], [-1.0, 0.5, 1.0, -0.25]], np.float32
)
IMAGE_MEAN = [0.485, 0.456, 0.406]
IMAGE_STD = [0.229, 0.224, 0.225]
CLASSES = ["cat", "dog", "car", "tree"]


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any]) -> bytes:
    graph = og.graph(nodes, "g", inputs, outputs, initializer=inits)
    m = og.make_model(graph, opset_imports=[og.opset("", 17)])
    m.ir_version = 8
    og.check(m)
    return bytes(m.SerializeToString())


def image_onnx() -> bytes:
    return _model(
        [
            og.node("GlobalAveragePool", ["x"], ["pooled"]),
            og.node("Flatten", ["pooled"], ["chan"], axis=1),
            og.node("MatMul", ["chan", "W"], ["logits"]),
            og.node("Softmax", ["logits"], ["probs"], axis=1),
            og.node("ReduceMean", ["chan"], ["m"], axes=[1], keepdims=0),
            og.node("Sigmoid", ["m"], ["brightness"]),
        ],
        [og.value("x", F, ["N", 3, "H", "W"])],
        [
            og.value("probs", F, ["N", 4]),
            og.value("brightness", F, ["N"]),
        ],
        [og.const(IMAGE_W, "W")],
    )


def heatmap_onnx() -> bytes:
    return _model(
        [
            og.node("Unsqueeze", ["frame", "ax"], ["f1"]),
            og.node("Neg", ["f1"], ["f2"]),
            og.node("Concat", ["f1", "f2"], ["both"], axis=1),
            og.node("Sigmoid", ["both"], ["heat"]),
        ],
        [og.value("frame", F, ["N", 16, 16])],
        [og.value("heat", F, ["N", 2, 16, 16])],
        [og.const(np.array([1], np.int64), "ax")],
    )


def pair_onnx() -> bytes:
    return _model(
        [
            og.node("Cast", ["mask"], ["maskf"], to=F),
            og.node("Mul", ["emb", "maskf"], ["prod"]),
            og.node("ReduceSum", ["prod", "axes"], ["total"], keepdims=0),
            og.node("Sigmoid", ["total"], ["score"]),
        ],
        [
            og.value("emb", F, ["N", 4, 4]),
            og.value("mask", I64, ["N", 4, 4]),
        ],
        [og.value("score", F, ["N"])],
        [og.const(np.array([1, 2], np.int64), "axes")],
    )


def _manifest_parts(kind: str) -> dict[str, Any]:
    if kind == "image":
        return {
            "inputs": {
                "x": {
                    "from": "tensor",
                    "value": "image",
                    "layout": "HWC",
                    "preprocess": {"scale": 1 / 255, "mean": IMAGE_MEAN, "std": IMAGE_STD},
                }
            },
            "outputs": {
                "score": {"output": "brightness"},
                "label": {"output": "probs", "reduce": "argmax", "classes": CLASSES},
                "confidence": {"output": "probs", "reduce": "max"},
            },
            "decision": {"anomaly": {"label_in": ["car"]}},
        }
    if kind == "heatmap":
        return {
            "inputs": {"frame": {"from": "tensor", "value": "frame"}},
            "outputs": {
                "score": {
                    "output": "heat",
                    "axis": 0,
                    "index": 0,
                    "reduce": "count_above",
                    "threshold": 0.9,
                },
                "confidence": {"output": "heat", "reduce": "topk", "k": 5},
            },
            "decision": {"anomaly": {"score_above": 10}},
        }
    if kind == "pair":
        return {
            "inputs": {
                "emb": {"from": "tensor", "value": "emb", "dtype": "float32"},
                "mask": {"from": "tensor", "value": "mask", "dtype": "int64"},
            },
            "outputs": {"score": "score"},
            "decision": {"anomaly": {"score_above": 0.9}},
        }
    raise ValueError(f"no tensor model {kind!r} (image, heatmap, pair)")


ONNX = {"image": image_onnx, "heatmap": heatmap_onnx, "pair": pair_onnx}


def write_bundle(
    folder: Path,
    kind: str,
    key: Ed25519PrivateKey | None,
    *,
    name: str | None = None,
    version: str = "1.0.0",
    changes: dict[str, Any] | None = None,
) -> Path:
    """A bundle of model ``kind`` in ``folder`` (signed when ``key`` is given); ``changes``
    replace top-level manifest fields (a broken manifest for the refusal tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = ONNX[kind]()
    (folder / "model.onnx").write_bytes(data)
    doc = {
        "name": name or f"tensor-{kind}",
        "version": version,
        "runtime": "onnx",
        "file": "model.onnx",
        "sha256": hashlib.sha256(data).hexdigest(),
        **_manifest_parts(kind),
        **(changes or {}),
    }
    (folder / "manifest.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    if key is not None:
        sign_bundle(folder, key)
    return folder
