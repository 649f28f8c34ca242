"""Building ONNX graphs: the small models of the tests and ``edgecloud bench`` and the detector
the learning loop exports. The one module, beside ``adapters/onnx.py`` (the runtime), that
imports the ``onnx`` package; callers build with these names and never import it themselves."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper

ModelProto = onnx.ModelProto
NodeProto = onnx.NodeProto
Tensor = onnx.TensorProto
FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64

node = helper.make_node  # (op_type, inputs, outputs, name=None, domain=None, **attributes)
value = helper.make_tensor_value_info  # (name, element type, shape)
const = numpy_helper.from_array  # (array, name): an initializer
graph = helper.make_graph  # (nodes, name, inputs, outputs, initializer=...)
opset = helper.make_opsetid  # (domain, version)
make_model = helper.make_model  # (graph, opset_imports=..., producer_name=...)


def check(model: ModelProto, full_check: bool = False) -> None:
    """onnx's own model checker (``full_check``: also infer and check the shapes)."""
    onnx.checker.check_model(model, full_check=full_check)
