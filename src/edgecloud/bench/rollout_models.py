"""Small signed bundles for the rollout tests and ``bench rollout`` (``adapters/onnx_graph``).

``linear_bundle``: values [temperature, vibration_rms, pressure] -> score = sigmoid(x.w + b);
``stateful_bundle``: x [N,2] from (temperature, pressure), state h [N,3] fed back per device,
score = sigmoid(sum(h)). A different ONNX signature each, so a fleet can switch between them.
``broken=True`` uses an operator of a custom domain that no runtime implements: the registry
accepts the bundle (the ONNX checker and the push-time input plan pass) and onnxruntime
refuses it at load (``unloadable``), which is the "fails to load" case of a rollout. (A
manifest that maps a missing output is now refused at push: ``unknown_output``.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgecloud.adapters import onnx_graph as og
from edgecloud.core.signing import sign_bundle

F = og.FLOAT


CUSTOM_DOMAIN = "com.edgecloud.test"


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any]) -> bytes:
    graph = og.graph(nodes, "g", inputs, outputs, initializer=inits)
    opsets = [og.opset("", 17), og.opset(CUSTOM_DOMAIN, 1)]
    custom = any(n.domain == CUSTOM_DOMAIN for n in nodes)
    m = og.make_model(graph, opset_imports=opsets if custom else opsets[:1])
    m.ir_version = 8
    og.check(m)
    return bytes(m.SerializeToString())


def linear_onnx(weights: Sequence[float], bias: float, *, unloadable: bool = False) -> bytes:
    w = np.array([[v] for v in weights], np.float32)
    matmul = (
        og.node("NoSuchOp", ["features", "W"], ["z0"], domain=CUSTOM_DOMAIN)
        if unloadable
        else og.node("MatMul", ["features", "W"], ["z0"])
    )
    return _model(
        [
            matmul,
            og.node("Add", ["z0", "B"], ["z"]),
            og.node("Sigmoid", ["z"], ["score"]),
        ],
        [og.value("features", F, ["batch", len(weights)])],
        [og.value("score", F, ["batch", 1])],
        [
            og.const(w, "W"),
            og.const(np.array([bias], np.float32), "B"),
        ],
    )


def stateful_onnx() -> bytes:
    w = np.array([[0.02, 0.0, 0.01], [0.0, 0.1, -0.05]], np.float32)
    return _model(
        [
            og.node("MatMul", ["x", "W"], ["xw"]),
            og.node("Mul", ["h_in", "decay"], ["hd"]),
            og.node("Add", ["hd", "xw"], ["h_out"]),
            og.node("ReduceSum", ["h_out", "axes"], ["s"], keepdims=0),
            og.node("Sigmoid", ["s"], ["score"]),
        ],
        [
            og.value("x", F, ["N", 2]),
            og.value("h_in", F, ["N", 3]),
        ],
        [
            og.value("h_out", F, ["N", 3]),
            og.value("score", F, ["N"]),
        ],
        [
            og.const(w, "W"),
            og.const(np.array([0.5], np.float32), "decay"),
            og.const(np.array([1], np.int64), "axes"),
        ],
    )


def write_bundle(
    folder: Path,
    name: str,
    version: str,
    onnx_bytes: bytes,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    key: Ed25519PrivateKey | None,
    decision: dict[str, Any] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(onnx_bytes)
    doc = {
        "name": name,
        "version": version,
        "runtime": "onnx",
        "file": "model.onnx",
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "inputs": inputs,
        "outputs": outputs,
        "decision": decision or {"anomaly": {"score_above": 0.5}},
    }
    (folder / "manifest.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    if key is not None:
        sign_bundle(folder, key)
    return folder


VALUES = ["temperature", "vibration_rms", "pressure"]


def linear_bundle(
    folder: Path,
    version: str,
    key: Ed25519PrivateKey | None,
    *,
    name: str = "press-linear",
    weights: Sequence[float] = (0.05, 2.0, 0.1),
    bias: float = -5.0,
    broken: bool = False,
) -> Path:
    return write_bundle(
        folder, name, version, linear_onnx(weights, bias, unloadable=broken),
        {"features": {"from": "values", "names": VALUES}},
        {"score": {"output": "score", "index": 0}},
        key,
    )  # fmt: skip


def stateful_bundle(
    folder: Path, version: str, key: Ed25519PrivateKey | None, *, name: str = "press-stateful"
) -> Path:
    return write_bundle(
        folder, name, version, stateful_onnx(),
        {
            "x": {"from": "values", "names": ["temperature", "pressure"]},
            "h_in": {"from": "state", "output": "h_out", "initial": {"zeros": [3]}},
        },
        {"score": "score"},
        key,
    )  # fmt: skip
