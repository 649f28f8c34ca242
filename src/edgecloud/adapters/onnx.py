"""onnxruntime sessions and onnx model checks: the only module that imports either.

``OnnxSession`` opens a model with an execution-provider choice (TensorRT, CUDA, CPU, by
availability and preference; the choice is logged) and thread / spinning settings suited to a
small shared machine, and describes its inputs and outputs (name, numpy dtype, shape with
symbolic dims as strings or None). ``describe_model`` / ``check_model`` use ``onnx`` only, for
places (the cloud registry) that have no onnxruntime. Both libraries are imported lazily so
that importing this module needs neither.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecloud.core.errors import ModelError
from edgecloud.core.tensors import Dim, TensorInfo

log = logging.getLogger(__name__)
__all__ = ["Dim", "OnnxSession", "TensorInfo", "check_model", "describe_model"]

AUTO_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")

_ORT_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}  # fmt: skip


def _info(name: str, type_str: str, shape: Sequence[Any] | None) -> TensorInfo:
    np_type = _ORT_TYPES.get(type_str)
    dims: tuple[Dim, ...] = tuple(
        d if isinstance(d, int) and d >= 0 else (d if isinstance(d, str) and d else None)
        for d in (shape or ())
    )
    return TensorInfo(name, type_str, np.dtype(np_type) if np_type is not None else None, dims)


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def select_providers(preference: str | Sequence[str], available: Sequence[str]) -> list[str]:
    """``auto`` (TensorRT > CUDA > CPU) or an ordered list, kept to what is available; CPU last."""
    wanted = AUTO_PROVIDERS if preference == "auto" else tuple(preference)
    chosen = [p for p in wanted if p in available]
    skipped = [p for p in wanted if p not in available]
    if skipped:
        log.info("execution providers not available here, skipped: %s", ", ".join(skipped))
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class OnnxSession:
    """One onnxruntime InferenceSession with edgecloud's settings."""

    def __init__(
        self,
        path: Path,
        *,
        providers: str | Sequence[str] = "auto",
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        allow_spinning: bool = False,
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = inter_op_threads
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        spin = "1" if allow_spinning else "0"
        opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
        opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
        wanted = select_providers(providers, ort.get_available_providers())
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/RuntimeError types
            raise ModelError(f"onnxruntime cannot load {path.name}: {exc}") from exc
        self.providers: list[str] = list(self._session.get_providers())
        self.inputs = [_info(i.name, i.type, i.shape) for i in self._session.get_inputs()]
        self.outputs = [_info(o.name, o.type, o.shape) for o in self._session.get_outputs()]
        log.info(
            "onnx session %s on %s (asked %s; intra_op=%d inter_op=%d spinning=%s)",
            path.name, self.providers[0], ",".join(wanted), intra_op_threads,
            inter_op_threads, allow_spinning,
            extra={"providers": self.providers},
        )  # fmt: skip

    def run(
        self, feeds: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None = None
    ) -> dict[str, Any]:
        names = list(outputs) if outputs is not None else [o.name for o in self.outputs]
        try:
            values = self._session.run(names, dict(feeds))
        except Exception as exc:  # onnxruntime's runtime errors have no common public base
            raise ModelError(f"onnxruntime run failed: {exc}") from exc
        return dict(zip(names, values, strict=True))


def describe_model(path: Path) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Inputs (without initializers) and outputs of an ONNX file, using ``onnx`` only."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"{path.name} is not an ONNX model: {exc}") from exc

    def info(v: Any) -> TensorInfo:
        t = v.type.tensor_type
        if not v.type.HasField("tensor_type"):
            return TensorInfo(v.name, v.type.WhichOneof("value") or "unknown", None, ())
        np_type = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))
        type_str = next((k for k, v in _ORT_TYPES.items() if np.dtype(v) == np_type), "unknown")
        dims = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim
        ]
        return _info(v.name, type_str, dims)

    inits = {i.name for i in model.graph.initializer}
    ins = [info(v) for v in model.graph.input if v.name not in inits]
    return ins, [info(v) for v in model.graph.output]


def check_model(path: Path) -> None:
    """Run the onnx checker (structure, opsets); raises ModelError with its message."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # onnx.checker.ValidationError, protobuf errors, OSError
        raise ModelError(f"{path.name} fails the ONNX checker: {exc}") from exc


def external_data_locations(path: Path) -> list[str]:
    """The ``location`` of every tensor kept outside the ONNX file (registry upload checks)."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"{path.name} is not an ONNX model: {exc}") from exc
    return [
        entry.value
        for tensor in _get_all_tensors(model)
        if uses_external_data(tensor)
        for entry in tensor.external_data
        if entry.key == "location"
    ]
