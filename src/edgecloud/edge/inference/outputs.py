"""From ONNX outputs to score / label / confidence for one reading (checked at load)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecloud.adapters.onnx import TensorInfo
from edgecloud.core.manifest import Manifest, OutputRef
from edgecloud.edge.inference.plan import symbolic
from edgecloud.edge.inference.port import InferenceFailure, ModelRefused

RAW_OUTPUT_MAX = 16  # outputs with at most this many values per reading go into the event


class BadOutput(Exception):
    pass


def row_of(arr: Any, i: int, n: int) -> Any:
    """Reading ``i``'s part of an output of a run over ``n`` readings."""
    a = np.asarray(arr)
    return a[i] if a.ndim >= 1 and a.shape[0] == n else a


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _static_row_size(info: TensorInfo) -> int | None:
    dims = info.shape[1:] if info.shape and symbolic(info.shape[0]) else info.shape
    if any(symbolic(d) for d in dims):
        return None
    return int(np.prod([int(d) for d in dims if d is not None], dtype=np.int64))


@dataclass(frozen=True)
class Selector:
    role: str
    ref: OutputRef

    def pick(self, row: Any) -> Any:
        flat = np.asarray(row).reshape(-1)
        ref = self.ref
        if ref.reduce == "argmax":
            idx = int(flat.argmax())
            return ref.classes[idx] if ref.classes and idx < len(ref.classes) else idx
        if ref.reduce == "max":
            return flat.max()
        if ref.index is not None:
            if ref.index >= flat.size:
                raise BadOutput(f"{ref.output}[{ref.index}] but it has {flat.size} values")
            value = flat[ref.index]
        elif flat.size == 1:
            value = flat[0]
        else:
            raise BadOutput(f"{ref.output} has {flat.size} values per reading; give an index")
        if self.role == "label" and ref.classes and np.issubdtype(type(value), np.integer):
            idx = int(value)
            return ref.classes[idx] if 0 <= idx < len(ref.classes) else idx
        return value


def _number(v: Any, role: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError) as exc:
        raise BadOutput(f"{role} {v!r} is not a number") from exc
    if not math.isfinite(f):
        raise BadOutput(f"{role} is {f}")
    return f


def _label(v: Any) -> str | int:
    v = _plain(v)
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return int(v) if v.is_integer() else str(v)
    return v if isinstance(v, int | str) else str(v)


@dataclass(frozen=True)
class OutputMap:
    selectors: list[Selector]
    raw: list[str]  # outputs copied into the result's ``outputs``

    @classmethod
    def build(cls, manifest: Manifest, outputs: Sequence[TensorInfo]) -> OutputMap:
        by_name = {o.name: o for o in outputs}
        selectors = []
        for role in ("score", "label", "confidence"):
            ref: OutputRef | None = getattr(manifest.outputs, role)
            if ref is None:
                continue
            info = by_name.get(ref.output)
            if info is None:
                have = ", ".join(o.describe() for o in outputs)
                raise ModelRefused("unknown_output", f"{role}: no output {ref.output!r} ({have})")
            if info.dtype is None:
                raise ModelRefused(
                    "dtype",
                    f"{role}: output {info.describe()} is not a tensor (export it without ZipMap)",
                )
            if role != "label" and info.dtype.kind not in "fiub":
                raise ModelRefused("dtype", f"{role}: output {info.describe()} is not numeric")
            size = _static_row_size(info)
            if size is not None and ref.reduce is None:
                if ref.index is None and size != 1:
                    raise ModelRefused(
                        "shape",
                        f"{role}: {info.describe()} has {size} values per reading; give an index",
                    )
                if ref.index is not None and ref.index >= size:
                    raise ModelRefused("shape", f"{role}: index {ref.index} of {info.describe()}")
            selectors.append(Selector(role, ref))
        states = set(manifest.state_outputs())
        raw = [
            o.name
            for o in outputs
            if o.is_tensor and o.name not in states and (_static_row_size(o) or 0) <= RAW_OUTPUT_MAX
        ]
        return cls(selectors, raw)

    def map(
        self, outs: Mapping[str, Any], i: int, n: int
    ) -> tuple[dict[str, Any], dict[str, Any]] | InferenceFailure:
        """(score/label/confidence, raw outputs) of reading ``i``, or why not."""
        picked: dict[str, Any] = {}
        try:
            for s in self.selectors:
                value = s.pick(row_of(outs[s.ref.output], i, n))
                picked[s.role] = _label(value) if s.role == "label" else _number(value, s.role)
        except BadOutput as exc:
            return InferenceFailure("bad_output", str(exc))
        raw: dict[str, Any] = {}
        for name in self.raw:
            row = np.asarray(row_of(outs[name], i, n))
            if row.size <= RAW_OUTPUT_MAX:
                raw[name] = (
                    _plain(row.item()) if row.size == 1 else [_plain(v) for v in row.reshape(-1)]
                )
        return picked, raw
