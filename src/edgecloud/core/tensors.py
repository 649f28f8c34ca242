"""Tensors: the model side (``TensorInfo``) and the reading side (``TensorValue``).

A reading value is a tensor when it is a nested JSON array (rank >= 2; the shape is inferred
and must be rectangular) or an object in the binary form::

    {"dtype": "uint8", "shape": [48, 64, 3], "b64": "<base64 of the raw little-endian bytes>"}

``split_tensors`` takes them out of a reading's values at parse time (numbers and flat arrays
stay values, as before) and checks each against ``TensorLimits``; every problem is an
``InvalidReading`` (``bad_tensor`` or ``too_large``). A ``TensorValue`` keeps the decoded
array and its identity (``sha256`` of dtype, shape and bytes); ``digest()`` is what the edge
store keeps instead of the tensor (dtype, shape, sha256 of the raw little-endian bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecloud.core.errors import InvalidReading

Dim = int | str | None
Array = np.ndarray[Any, Any]

TENSOR_DTYPES = (
    "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool",
)  # fmt: skip


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output: name, runtime type string, numpy dtype, shape (symbolic dims as
    strings or None)."""

    name: str
    type: str  # onnxruntime's type string, e.g. "tensor(float)"
    dtype: np.dtype[Any] | None  # None when not a tensor (sequence, map)
    shape: tuple[Dim, ...]

    @property
    def is_tensor(self) -> bool:
        return self.dtype is not None

    def describe(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        kind = self.dtype.name if self.dtype is not None else self.type
        return f"{self.name} ({kind} [{dims}])"


@dataclass(frozen=True)
class TensorLimits:
    max_bytes: int = 16 * 1024 * 1024  # decoded size of one tensor value
    max_rank: int = 8
    max_tensors: int = 16  # tensor values per reading


@dataclass(frozen=True, eq=False)
class TensorValue:
    """One decoded tensor of a reading; equal when dtype, shape and bytes are."""

    array: Array
    sha256: str

    @property
    def dtype(self) -> str:
        return str(self.array.dtype)

    @property
    def shape(self) -> list[int]:
        return list(self.array.shape)

    def raw(self) -> bytes:
        """The raw little-endian bytes (C order): what the binary form's ``b64`` carries."""
        return le_bytes(self.array)

    def digest(self) -> dict[str, Any]:
        """What the edge store keeps instead of the tensor: dtype, shape and the sha256 of the
        raw little-endian bytes (``hashlib.sha256(raw)``; a device can check it)."""
        return {
            "dtype": self.dtype,
            "shape": self.shape,
            "sha256": hashlib.sha256(self.raw()).hexdigest(),
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorValue) and other.sha256 == self.sha256

    def __hash__(self) -> int:
        return hash(self.sha256)


def tensor_digest(array: Array) -> str:
    a = np.ascontiguousarray(array)
    head = f"{a.dtype.str}:{','.join(map(str, a.shape))}:".encode()
    return hashlib.sha256(head + a.tobytes()).hexdigest()


def is_tensor_value(v: Any) -> bool:
    """A nested array or a binary-form object (a flat array stays an array value)."""
    return type(v) is dict or (type(v) is list and len(v) > 0 and type(v[0]) is list)


def _bad(name: str, why: str) -> InvalidReading:
    return InvalidReading("bad_tensor", f"values.{name}: {why}")


def _from_nested(name: str, v: list[Any], limits: TensorLimits) -> Array:
    shape: list[int] = []
    level: Any = v
    while type(level) is list:
        if not level:
            raise _bad(name, "an empty array inside a tensor")
        shape.append(len(level))
        level = level[0]
    if len(shape) > limits.max_rank:
        raise _bad(name, f"rank {len(shape)}, limit {limits.max_rank}")
    if int(np.prod(shape, dtype=np.int64)) * 8 > limits.max_bytes:
        raise InvalidReading(
            "too_large", f"values.{name}: {shape} elements over {limits.max_bytes} bytes"
        )
    try:
        arr = np.array(v, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as exc:  # ragged or not numbers
        raise _bad(name, f"not a rectangular array of numbers (inferred shape {shape})") from exc
    if list(arr.shape) != shape:
        raise _bad(name, f"not a rectangular array of numbers (inferred shape {shape})")
    if _has_bool(v, len(shape)):
        raise _bad(name, "holds true/false, not numbers")
    if not np.isfinite(arr).all():
        raise InvalidReading("non_finite", f"values.{name} holds a non-finite number")
    return arr


def _has_bool(v: Any, depth: int) -> bool:
    if depth == 1:
        return any(type(x) is bool for x in v)
    return any(_has_bool(x, depth - 1) for x in v)


def _from_binary(name: str, v: dict[str, Any], limits: TensorLimits) -> Array:
    if set(v) != {"dtype", "shape", "b64"}:
        raise _bad(name, "a binary tensor is {dtype, shape, b64} and nothing else")
    dtype, shape, text = v["dtype"], v["shape"], v["b64"]
    if dtype not in TENSOR_DTYPES:
        raise _bad(name, f"dtype {dtype!r} is not one of {', '.join(TENSOR_DTYPES)}")
    if (
        type(shape) is not list
        or not 1 <= len(shape) <= limits.max_rank
        or not all(type(d) is int and 1 <= d <= 2**31 for d in shape)
    ):
        raise _bad(name, f"shape must be 1..{limits.max_rank} positive integers")
    if type(text) is not str:
        raise _bad(name, "b64 must be a base64 string")
    dt = np.dtype(dtype).newbyteorder("<")
    want = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if want > limits.max_bytes:
        raise InvalidReading(
            "too_large", f"values.{name}: {want} bytes, limit {limits.max_bytes} per tensor"
        )
    if len(text) > (want + 2) // 3 * 4 + 4:
        raise _bad(name, f"b64 is longer than shape {shape} of {dtype} needs")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(name, f"b64 is not base64: {exc}") from exc
    if len(raw) != want:
        raise _bad(name, f"{len(raw)} bytes, shape {shape} of {dtype} is {want}")
    arr = np.frombuffer(raw, dt).reshape(shape).astype(np.dtype(dtype), copy=False)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InvalidReading("non_finite", f"values.{name} holds a non-finite number")
    return arr


def decode_tensor(name: str, v: Any, limits: TensorLimits | None = None) -> TensorValue:
    limits = limits or TensorLimits()
    arr = _from_binary(name, v, limits) if type(v) is dict else _from_nested(name, v, limits)
    return TensorValue(arr, tensor_digest(arr))


def split_tensors(
    values: dict[str, Any], limits: TensorLimits | None = None
) -> tuple[dict[str, Any], dict[str, TensorValue]]:
    """(values without tensors, name -> decoded tensor); ``values`` itself when it has none."""
    names = [k for k, v in values.items() if is_tensor_value(v)]
    if not names:
        return values, {}
    limits = limits or TensorLimits()
    if len(names) > limits.max_tensors:
        raise InvalidReading(
            "too_large", f"{len(names)} tensor values, limit {limits.max_tensors} per reading"
        )
    tensors = {k: decode_tensor(k, values[k], limits) for k in names}
    return {k: v for k, v in values.items() if k not in tensors}, tensors


def le_bytes(array: Array) -> bytes:
    """The raw bytes of ``array``, little-endian, C order."""
    a = np.ascontiguousarray(array)
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def encode_binary(array: Array) -> dict[str, Any]:
    """The binary form of ``array`` (what a device sends; the simulator and tests use it)."""
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "b64": base64.b64encode(le_bytes(array)).decode(),
    }
