"""How each model input is filled from readings: decided once at load, applied per batch.

Shared by the edge backend (at load) and the cloud registry (at push, from the ONNX graph's
declared inputs), so that both refuse a manifest with the same reason codes.

For every ONNX input the plan knows the manifest's source, the model's dtype and shape, and
whether the leading axis is a batch axis. A model whose per-reading inputs all have a symbolic
leading dim runs a whole batch in one call (``dynamic``); otherwise one reading per call
(a batch axis fixed at 1, or no batch axis at all). Everything that can be checked without
data is checked here and refused with ``ModelRefused``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from edgecloud.core.inference import InferenceFailure, ModelRefused
from edgecloud.core.manifest import (
    ArrayInput,
    ConstantInput,
    InputSpec,
    Manifest,
    StateInput,
    TensorInput,
    ValuesInput,
    Zeros,
)
from edgecloud.core.preprocess import check_image_plan, prepare_tensor
from edgecloud.core.readings import Reading
from edgecloud.core.tensors import Dim, TensorInfo

Array = np.ndarray[Any, Any]


def symbolic(d: Dim) -> bool:
    return d is None or isinstance(d, str)


@dataclass(frozen=True)
class InputPlan:
    name: str
    spec: InputSpec
    dtype: np.dtype[Any]
    batched: bool  # the leading axis is the batch axis
    dynamic: bool  # ... and it is symbolic
    row: tuple[Dim, ...]  # one reading's shape
    value: Array | None = None  # constant value, or a state's initial row

    def concrete_row(self, last: int | None = None) -> tuple[int, ...]:
        """The row shape with symbolic dims set to 1 (the last to ``last`` when given)."""
        dims = [1 if symbolic(d) else int(d) for d in self.row]  # type: ignore[arg-type]
        if last is not None and dims:
            dims[-1] = last
        return tuple(dims)


def _refuse(reason: str, info: TensorInfo, why: str) -> ModelRefused:
    return ModelRefused(reason, f"input {info.describe()}: {why}")


def _leading(info: TensorInfo, row_rank: int) -> tuple[bool, bool]:
    """(batched, dynamic) when the input should be a batch of rows of rank ``row_rank``."""
    shape = info.shape
    if len(shape) == row_rank + 1 and (symbolic(shape[0]) or shape[0] == 1):
        return True, symbolic(shape[0])
    if len(shape) == row_rank:
        return False, False
    raise _refuse("shape", info, f"rank {len(shape)} cannot take rows of rank {row_rank}")


def _check_row(info: TensorInfo, row: tuple[Dim, ...], last: int | None, what: str) -> None:
    *lead, tail = row if row else (None,)
    if any(not symbolic(d) and d != 1 for d in lead):
        raise _refuse("shape", info, f"{what} fills only the last dimension; others must be 1")
    if last is not None and row and not symbolic(tail) and tail != last:
        raise _refuse("shape", info, f"last dimension is {tail}, {what} gives {last}")


def _cast(value: Any, dtype: np.dtype[Any], info: TensorInfo) -> Array:
    try:
        raw = np.asarray(value)
        arr = raw.astype(dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _refuse("dtype", info, f"value {value!r} cannot be made {dtype.name}") from exc
    if dtype.kind in "iub" and raw.dtype.kind in "fiub" and not np.array_equal(arr, raw):
        raise _refuse("dtype", info, f"value {value!r} does not fit {dtype.name}")
    return arr


def _values(info: TensorInfo, spec: ValuesInput, dtype: np.dtype[Any]) -> InputPlan:
    k = len(spec.names)
    if dtype.kind not in "fiub":
        raise _refuse("dtype", info, f"{dtype.name} cannot be made from reading numbers")
    shape = info.shape
    if len(shape) == 0:
        if k != 1:
            raise _refuse("shape", info, f"a scalar input cannot take {k} values")
        return InputPlan(info.name, spec, dtype, False, False, ())
    if len(shape) == 1 and k == 1 and symbolic(shape[0]):
        return InputPlan(info.name, spec, dtype, True, True, ())
    batched, dynamic = _leading(info, len(shape) - 1) if len(shape) >= 2 else (False, False)
    row = shape[1:] if batched else shape
    _check_row(info, row, k, f"{k} named values")
    return InputPlan(info.name, spec, dtype, batched, dynamic, row)


def _array(info: TensorInfo, spec: ArrayInput, dtype: np.dtype[Any]) -> InputPlan:
    if dtype.kind not in "fiub":
        raise _refuse("dtype", info, f"{dtype.name} cannot be made from a number array")
    shape = info.shape
    if not shape:
        raise _refuse("shape", info, f"a scalar input cannot take the array {spec.value!r}")
    batched, dynamic = _leading(info, len(shape) - 1) if len(shape) >= 2 else (False, False)
    row = shape[1:] if batched else shape
    _check_row(info, row, None, f"array {spec.value!r}")
    return InputPlan(info.name, spec, dtype, batched, dynamic, row)


def _tensor(info: TensorInfo, spec: TensorInput, dtype: np.dtype[Any]) -> InputPlan:
    if dtype.kind not in "fiub":
        raise _refuse("dtype", info, f"{dtype.name} cannot be made from a tensor value")
    shape = info.shape
    if not shape:
        raise _refuse("shape", info, f"a scalar input cannot take the tensor {spec.value!r}")
    batched = len(shape) >= 2 and (symbolic(shape[0]) or shape[0] == 1)
    row = shape[1:] if batched else shape
    why = check_image_plan(spec, row, dtype)
    if why is not None:
        raise _refuse(why[0], info, why[1])
    return InputPlan(info.name, spec, dtype, batched, batched and symbolic(shape[0]), row)


def _shaped(info: TensorInfo, value: Array, what: str) -> tuple[bool, bool, tuple[Dim, ...]]:
    batched, dynamic = _leading(info, value.ndim)
    row = info.shape[1:] if batched else info.shape
    if any(not symbolic(d) and d != v for d, v in zip(row, value.shape, strict=True)):
        raise _refuse("shape", info, f"{what} has shape {list(value.shape)}")
    return batched, dynamic, row


def _constant(info: TensorInfo, spec: ConstantInput, dtype: np.dtype[Any]) -> InputPlan:
    value = _cast(spec.value, dtype, info)
    shape = info.shape
    static = [d for d in shape if isinstance(d, int)]
    if len(static) == len(shape) and int(np.prod(static, dtype=np.int64)) == value.size:
        # a fully static input: the constant is the whole tensor (a [1] sample rate, say)
        value = value.reshape(static)
        return InputPlan(info.name, spec, dtype, False, False, shape, value)
    batched, dynamic, row = _shaped(info, value, "the constant")
    return InputPlan(info.name, spec, dtype, batched, dynamic, row, np.ascontiguousarray(value))


def _state(
    info: TensorInfo, spec: StateInput, dtype: np.dtype[Any], outputs: Mapping[str, TensorInfo]
) -> InputPlan:
    out = outputs.get(spec.output)
    if out is None:
        raise _refuse("unknown_output", info, f"state output {spec.output!r} is not a model output")
    if out.dtype != dtype:
        raise _refuse("dtype", info, f"state output {out.describe()} has another dtype")
    if len(out.shape) != len(info.shape) or any(
        not symbolic(a) and not symbolic(b) and a != b
        for a, b in zip(out.shape, info.shape, strict=False)
    ):
        raise _refuse("shape", info, f"state output {out.describe()} has another shape")
    initial = spec.initial
    value = (
        np.zeros(initial.zeros, dtype)
        if isinstance(initial, Zeros)
        else _cast(initial, dtype, info)
    )
    batched, dynamic, row = _shaped(info, value, "the initial state")
    return InputPlan(info.name, spec, dtype, batched, dynamic, row, value)


@dataclass(frozen=True)
class FeedPlan:
    inputs: list[InputPlan]
    dynamic: bool  # one run per batch (else one run per reading)
    stateful: bool

    @property
    def state_inputs(self) -> list[InputPlan]:
        return [p for p in self.inputs if isinstance(p.spec, StateInput)]

    @property
    def has_tensors(self) -> bool:
        return any(isinstance(p.spec, TensorInput) for p in self.inputs)

    def extract(self, reading: Reading) -> dict[str, Array] | InferenceFailure:
        """The reading's own data for each values / array / tensor input (not yet batched)."""
        rows: dict[str, Array] = {}
        for p in self.inputs:
            if isinstance(p.spec, TensorInput):
                t = prepare_tensor(p.spec, p.row, p.dtype, reading)
                if isinstance(t, tuple):
                    return InferenceFailure(*t)
                rows[p.name] = t
            elif isinstance(p.spec, ValuesInput):
                nums: list[float] = []
                for name in p.spec.names:
                    v = reading.values.get(name)
                    if v is None:
                        return InferenceFailure("value_missing", f"reading has no {name!r}")
                    if isinstance(v, list):
                        return InferenceFailure("wrong_type", f"{name!r} is an array, not a number")
                    nums.append(v)
                rows[p.name] = np.asarray(nums, np.float64)
            elif isinstance(p.spec, ArrayInput):
                a = reading.values.get(p.spec.value)
                if a is None:
                    return InferenceFailure("value_missing", f"reading has no {p.spec.value!r}")
                if not isinstance(a, list):
                    return InferenceFailure(
                        "wrong_type", f"{p.spec.value!r} is a number, not an array"
                    )
                last = p.row[-1]
                if not symbolic(last) and len(a) != last:
                    return InferenceFailure(
                        "wrong_shape",
                        f"{p.spec.value!r} has {len(a)} elements, the model takes {last}",
                    )
                rows[p.name] = np.asarray(a, np.float64)
        return rows

    def columns(self, readings: Sequence[Reading]) -> dict[str, Array] | None:
        """Each values / array input of the whole batch as one float64 array [n, width], built
        in one numpy call per input; None when any reading lacks a value, has a number where an
        array is needed (or the reverse), or arrays differ in length or do not fit a static last
        dim. ``extract`` then takes the batch reading by reading and says which and why."""
        if self.has_tensors:
            return None  # tensors are prepared reading by reading (``extract``)
        cols: dict[str, Array] = {}
        n = len(readings)
        get: Any
        for p in self.inputs:
            spec = p.spec
            if isinstance(spec, ValuesInput):
                get = itemgetter(*spec.names)
                ndim = 2 if len(spec.names) > 1 else 1
            elif isinstance(spec, ArrayInput):
                get = itemgetter(spec.value)
                ndim = 2
            else:
                continue
            try:
                arr = np.array([get(r.values) for r in readings], np.float64)
            except (KeyError, ValueError, TypeError, OverflowError):
                return None
            if arr.ndim != ndim:  # arrays where numbers were named, or numbers for an array
                return None
            if ndim == 2 and isinstance(spec, ArrayInput):
                last = p.row[-1]
                if not symbolic(last) and arr.shape[1] != last:
                    return None
            cols[p.name] = arr.reshape(n, -1)
        return cols

    def feeds(
        self, rows: Sequence[Mapping[str, Array]], states: Sequence[Mapping[str, Array]]
    ) -> dict[str, Array]:
        """Model feeds for ``len(rows)`` readings (1 unless ``dynamic``); same array lengths."""
        stacked = {
            p.name: np.stack([r[p.name] for r in rows])
            for p in self.inputs
            if isinstance(p.spec, ValuesInput | ArrayInput | TensorInput)
        }
        return self.stacked_feeds(stacked, len(rows), states)

    def stacked_feeds(
        self, stacked: Mapping[str, Array], n: int, states: Sequence[Mapping[str, Array]]
    ) -> dict[str, Array]:
        """Model feeds for ``n`` readings whose values / array inputs are ``stacked`` [n, width]
        (as ``columns`` makes them, or ``extract``'s rows stacked)."""
        feeds: dict[str, Array] = {}
        for p in self.inputs:
            if isinstance(p.spec, ConstantInput):
                assert p.value is not None
                arr = np.repeat(p.value[None, ...], n, axis=0) if p.batched else p.value
            elif isinstance(p.spec, StateInput):
                arr = np.stack([s[p.name] for s in states]) if p.batched else states[0][p.name]
            elif isinstance(p.spec, TensorInput):
                arr = stacked[p.name] if p.batched else stacked[p.name][0]
            else:
                col = stacked[p.name].astype(p.dtype, copy=False)
                row = p.concrete_row(last=col.shape[1]) if p.row else ()
                arr = col.reshape((n, *row) if p.batched else row)
            feeds[p.name] = np.ascontiguousarray(arr)
        return feeds


def build_plan(
    manifest: Manifest, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]
) -> FeedPlan:
    by_name = {i.name: i for i in inputs}
    out_by_name = {o.name: o for o in outputs}
    extra = sorted(set(manifest.inputs) - set(by_name))
    if extra:
        have = ", ".join(i.describe() for i in inputs)
        raise ModelRefused("unknown_input", f"the model has no input {extra[0]!r} (it has {have})")
    plans: list[InputPlan] = []
    for info in inputs:
        spec = manifest.inputs.get(info.name)
        if spec is None:
            raise ModelRefused(
                "input_not_covered", f"the manifest does not fill input {info.describe()}"
            )
        if info.dtype is None:
            raise _refuse("dtype", info, f"{info.type} is not a tensor")
        wanted = getattr(spec, "dtype", None)
        if wanted is not None and np.dtype(object if wanted == "string" else wanted) != info.dtype:
            raise _refuse(
                "dtype", info, f"the manifest says {wanted}, the model wants {info.dtype}"
            )
        if isinstance(spec, ValuesInput):
            plans.append(_values(info, spec, info.dtype))
        elif isinstance(spec, ArrayInput):
            plans.append(_array(info, spec, info.dtype))
        elif isinstance(spec, TensorInput):
            plans.append(_tensor(info, spec, info.dtype))
        elif isinstance(spec, ConstantInput):
            plans.append(_constant(info, spec, info.dtype))
        else:
            plans.append(_state(info, spec, info.dtype, out_by_name))
    per_reading = [p for p in plans if not isinstance(p.spec, ConstantInput)]
    dynamic = all(p.dynamic for p in per_reading) and all(p.dynamic or not p.batched for p in plans)
    stateful = any(isinstance(p.spec, StateInput) for p in plans)
    return FeedPlan(plans, dynamic and bool(per_reading), stateful)
