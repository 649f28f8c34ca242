"""From ONNX outputs to score / label / confidence for one reading (checked at load)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecloud.core.inference import InferenceFailure, ModelRefused
from edgecloud.core.manifest import Manifest, OutputRef, Rule
from edgecloud.core.plan import symbolic
from edgecloud.core.tensors import TensorInfo

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

    def pick_column(self, rows: np.ndarray[Any, Any]) -> list[Any] | np.ndarray[Any, Any]:
        """The selected value of each row of ``rows`` [n, values per reading]."""
        ref = self.ref
        width = rows.shape[1]
        if ref.reduce is not None and width == 0:
            raise BadOutput(f"{ref.output} has no values to {ref.reduce}")
        if ref.reduce == "argmax":
            idx = rows.argmax(axis=1).tolist()
            if ref.classes:
                return [ref.classes[i] if i < len(ref.classes) else i for i in idx]
            return list(idx)
        if ref.reduce is not None:
            return _reduce(rows, ref)
        if ref.index is not None:
            if ref.index >= width:
                raise BadOutput(f"{ref.output}[{ref.index}] but it has {width} values")
            col = rows[:, ref.index]
        elif width == 1:
            col = rows[:, 0]
        else:
            raise BadOutput(f"{ref.output} has {width} values per reading; give an index")
        if self.role == "label" and ref.classes and col.dtype.kind in "iu":
            return [ref.classes[i] if 0 <= i < len(ref.classes) else i for i in col.tolist()]
        return col if self.role != "label" else col.tolist()

    def rows_of(self, arr: Any, n: int) -> np.ndarray[Any, Any]:
        """The output as [n, values per reading], after ``axis`` / ``index`` took a slice."""
        ref = self.ref
        if ref.axis is None:
            return _rows(arr, n)
        a = np.asarray(arr)
        parts = a if a.ndim >= 1 and a.shape[0] == n else np.broadcast_to(a, (n, *a.shape))
        if ref.axis >= parts.ndim - 1:
            raise BadOutput(f"{ref.output} has {parts.ndim - 1} axes per reading, not {ref.axis}")
        size = parts.shape[1 + ref.axis]
        if ref.index is None or ref.index >= size:
            raise BadOutput(f"{ref.output}: index {ref.index} of axis {ref.axis} ({size} long)")
        sliced: np.ndarray[Any, Any] = np.take(parts, ref.index, axis=1 + ref.axis)
        return sliced.reshape(n, -1)


def _reduce(rows: np.ndarray[Any, Any], ref: OutputRef) -> np.ndarray[Any, Any]:
    if ref.reduce == "max":
        return np.asarray(rows.max(axis=1))
    if ref.reduce == "min":
        return np.asarray(rows.min(axis=1))
    if ref.reduce == "mean":
        return np.asarray(rows.mean(axis=1, dtype=np.float64))
    if ref.reduce == "sum":
        return np.asarray(rows.sum(axis=1, dtype=np.float64))
    if ref.reduce == "count_above":
        assert ref.threshold is not None
        return np.asarray((rows > ref.threshold).sum(axis=1), np.float64)
    assert ref.reduce == "topk" and ref.k is not None
    width = rows.shape[1]
    if ref.k > width:
        raise BadOutput(f"{ref.output}: top {ref.k} of {width} values")
    top = np.partition(rows, width - ref.k, axis=1)[:, width - ref.k :]
    return np.asarray(top.mean(axis=1, dtype=np.float64))


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
            if ref.axis is not None and info.shape and ref.axis >= len(info.shape):
                raise ModelRefused("shape", f"{role}: axis {ref.axis} of {info.describe()}")
            size = _static_row_size(info)
            if size is not None and ref.reduce is None and ref.axis is None:
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

    def map_batch(
        self, outs: Mapping[str, Any], n: int
    ) -> list[tuple[dict[str, Any], dict[str, Any]] | InferenceFailure]:
        """Per reading of a run over ``n`` readings: (score/label/confidence, raw outputs), or
        why not: ``map_columns``' columns, one dict per reading."""
        cols = self.map_columns(outs, n)
        if isinstance(cols, InferenceFailure):
            return [cols] * n
        picked: list[dict[str, Any]] = [{} for _ in range(n)]
        for role, nums in cols.numbers.items():
            for i, v in enumerate(nums.tolist()):
                picked[i][role] = v
        if cols.labels is not None:
            for i, label in enumerate(cols.labels):
                picked[i]["label"] = label
        raws: list[dict[str, Any]] = [{} for _ in range(n)]
        for name, values in cols.raw:
            for i, v in enumerate(values):
                raws[i][name] = v
        return [cols.failed.get(i) or (picked[i], raws[i]) for i in range(n)]

    def map_columns(self, outs: Mapping[str, Any], n: int) -> Columns | InferenceFailure:
        """The run's outputs mapped by column (the backend's fast path; ``map_batch`` makes a
        dict per reading of them).

        A failure for the whole run (an output that cannot be mapped), or ``Columns`` whose
        ``failed`` holds the readings that failed alone (a non-finite score or confidence)."""
        cols = Columns({}, None, {}, [])
        for s in self.selectors:
            try:
                column = s.pick_column(s.rows_of(outs[s.ref.output], n))
            except BadOutput as exc:
                return InferenceFailure("bad_output", str(exc))
            if s.role == "label":
                cols.labels = [_label(v) for v in column]
                continue
            nums = np.asarray(column, np.float64)
            for bad in np.flatnonzero(~np.isfinite(nums)).tolist():
                cols.failed[bad] = InferenceFailure("bad_output", f"{s.role} is {nums[bad]}")
            cols.numbers[s.role] = nums
        for name in self.raw:
            rows = _rows(outs[name], n)
            if rows.shape[1] > RAW_OUTPUT_MAX:
                continue
            if rows.dtype.kind == "f" and not np.isfinite(rows).all():
                finite = np.isfinite(rows)
                rows = rows.astype(object)
                rows[~finite] = None  # JSON has no NaN
            if rows.shape[1] == 1:
                values = rows[:, 0].tolist()
                if rows.dtype.kind in "OS":
                    values = [_plain(v) for v in values]
            else:
                values = rows.tolist()
                if rows.dtype.kind in "OS":
                    values = [[_plain(v) for v in row] for row in values]
            cols.raw.append((name, values))
        return cols


@dataclass
class Columns:
    """Mapped outputs of one run over n readings: ``numbers`` (score, confidence: float64 [n]),
    ``labels`` (or None), ``failed`` (reading index -> why), ``raw`` ((output, n values))."""

    numbers: dict[str, np.ndarray[Any, Any]]
    labels: list[Any] | None
    failed: dict[int, InferenceFailure]
    raw: list[tuple[str, list[Any]]]

    def flags(self, rule: Rule | None, n: int) -> list[bool]:
        """``rule.holds`` for every reading at once (numpy comparisons, Python bools out)."""
        if rule is None:
            return [False] * n
        mask = np.zeros(n, bool)
        score, conf = self.numbers.get("score"), self.numbers.get("confidence")
        if rule.score_above is not None and score is not None:
            mask |= score > rule.score_above
        if rule.confidence_below is not None and conf is not None:
            mask |= conf < rule.confidence_below
        flags: list[bool] = mask.tolist()
        if rule.label_in is not None and self.labels is not None:
            label_in = rule.label_in
            flags = [
                f or (lab is not None and lab in label_in)
                for f, lab in zip(flags, self.labels, strict=True)
            ]
        return flags


def _rows(arr: Any, n: int) -> np.ndarray[Any, Any]:
    """An output as [n, values per reading] (an output without a batch axis is shared)."""
    a = np.asarray(arr)
    if a.ndim >= 1 and a.shape[0] == n:
        return a.reshape(n, -1)
    return np.broadcast_to(a.reshape(1, -1), (n, a.size))
