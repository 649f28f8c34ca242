"""ONNX models of different signatures, made with onnx.helper, for the inference tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
OPSET = [helper.make_opsetid("", 17)]

W4 = np.array([[0.5], [-0.25], [1.0], [0.125]], np.float32)
B4 = np.array([-0.5], np.float32)
W_STATE = np.array([[1.0, 0.0, 0.5], [0.0, 2.0, -0.5]], np.float32)
DECAY = np.float32(0.5)


def model(
    nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: Sequence[Any] = ()
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(graph, opset_imports=OPSET)
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def features_model() -> onnx.ModelProto:
    """features float32 [N,4] -> score [N,1] = sigmoid(x@W+b), probs [N,2] = [1-s, s]."""
    return model(
        [
            helper.make_node("MatMul", ["features", "W"], ["z0"]),
            helper.make_node("Add", ["z0", "B"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["score"]),
            helper.make_node("Sub", ["one", "score"], ["inv"]),
            helper.make_node("Concat", ["inv", "score"], ["probs"], axis=1),
        ],
        [helper.make_tensor_value_info("features", F, ["batch", 4])],
        [
            helper.make_tensor_value_info("score", F, ["batch", 1]),
            helper.make_tensor_value_info("probs", F, ["batch", 2]),
        ],
        [
            numpy_helper.from_array(W4, "W"),
            numpy_helper.from_array(B4, "B"),
            numpy_helper.from_array(np.array([1.0], np.float32), "one"),
        ],
    )


def audio_model(frame: int | str = "T") -> onnx.ModelProto:
    """audio float32 [N,T], sample_rate int64 [1] -> level [N] = rms(audio) * sr / 16000."""
    return model(
        [
            helper.make_node("Mul", ["audio", "audio"], ["sq"]),
            helper.make_node("ReduceMean", ["sq"], ["ms"], axes=[1], keepdims=0),
            helper.make_node("Sqrt", ["ms"], ["rms"]),
            helper.make_node("Cast", ["sample_rate"], ["srf"], to=F),
            helper.make_node("Div", ["srf", "base"], ["gain"]),
            helper.make_node("Mul", ["rms", "gain"], ["level"]),
        ],
        [
            helper.make_tensor_value_info("audio", F, ["N", frame]),
            helper.make_tensor_value_info("sample_rate", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("level", F, ["N"])],
        [numpy_helper.from_array(np.array([16000.0], np.float32), "base")],
    )


def stateful_model() -> onnx.ModelProto:
    """x [N,2], h_in [N,3] -> h_out = 0.5*h_in + x@W, score [N] = sum(h_out)."""
    return model(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Mul", ["h_in", "decay"], ["hd"]),
            helper.make_node("Add", ["hd", "xw"], ["h_out"]),
            helper.make_node("ReduceSum", ["h_out", "axes"], ["score"], keepdims=0),
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
            numpy_helper.from_array(W_STATE, "W"),
            numpy_helper.from_array(np.array([DECAY], np.float32), "decay"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
        ],
    )


def fixed_batch_model() -> onnx.ModelProto:
    """'input_1:0' float64 [1,3] -> 'out/score:0' [1,1] = x0*x1 - x2 (a TF-style export)."""
    return model(
        [
            helper.make_node("Mul", ["input_1:0", "w"], ["prod"]),
            helper.make_node("ReduceSum", ["prod", "axes"], ["out/score:0"], keepdims=1),
        ],
        [helper.make_tensor_value_info("input_1:0", TensorProto.DOUBLE, [1, 3])],
        [helper.make_tensor_value_info("out/score:0", TensorProto.DOUBLE, [1, 1])],
        [
            numpy_helper.from_array(np.array([[1.0, 2.0, -1.0]]), "w"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
        ],
    )
