"""Small signed bundles for the rollout tests and ``bench rollout`` (made with onnx.helper).

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
import onnx
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from onnx import TensorProto, helper, numpy_helper

from edgecloud.core.signing import sign_bundle

F = TensorProto.FLOAT


CUSTOM_DOMAIN = "com.edgecloud.test"


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any]) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(CUSTOM_DOMAIN, 1)]
    custom = any(n.domain == CUSTOM_DOMAIN for n in nodes)
    m = helper.make_model(graph, opset_imports=opsets if custom else opsets[:1])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return bytes(m.SerializeToString())


def linear_onnx(weights: Sequence[float], bias: float, *, unloadable: bool = False) -> bytes:
    w = np.array([[v] for v in weights], np.float32)
    matmul = (
        helper.make_node("NoSuchOp", ["features", "W"], ["z0"], domain=CUSTOM_DOMAIN)
        if unloadable
        else helper.make_node("MatMul", ["features", "W"], ["z0"])
    )
    return _model(
        [
            matmul,
            helper.make_node("Add", ["z0", "B"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["score"]),
        ],
        [helper.make_tensor_value_info("features", F, ["batch", len(weights)])],
        [helper.make_tensor_value_info("score", F, ["batch", 1])],
        [
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(np.array([bias], np.float32), "B"),
        ],
    )


def stateful_onnx() -> bytes:
    w = np.array([[0.02, 0.0, 0.01], [0.0, 0.1, -0.05]], np.float32)
    return _model(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Mul", ["h_in", "decay"], ["hd"]),
            helper.make_node("Add", ["hd", "xw"], ["h_out"]),
            helper.make_node("ReduceSum", ["h_out", "axes"], ["s"], keepdims=0),
            helper.make_node("Sigmoid", ["s"], ["score"]),
        ],
        [
            helper.make_tensor_value_info("x", F, ["N", 2]),
            helper.make_tensor_value_info("h_in", F, ["N", 3]),
        ],
        [
            helper.make_tensor_value_info("h_out", F, ["N", 3]),
            helper.make_tensor_value_info("score", F, ["N"]),
        ],
        [
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(np.array([0.5], np.float32), "decay"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
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
