"""A tensor reading value made into one reading's slice of a model input (``TensorInput``).

``check_image_plan`` is what can be checked at load / push, from the model's row shape (the
input's shape less a batch axis) and dtype; ``prepare_tensor`` does the per-reading work and
says why not with a failure reason (``value_missing``, ``wrong_type``, ``wrong_shape``,
``wrong_dtype``). Image preprocessing follows ``Preprocess``'s order: resize, channel order,
scale, mean / std (in float32, HWC), then the model's layout and dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgecloud.core.manifest import TensorInput
from edgecloud.core.readings import Reading
from edgecloud.core.tensors import Array, Dim

Why = tuple[str, str]


def _static(d: Dim) -> bool:
    return isinstance(d, int)


def _hwc_of(spec: TensorInput, row: Sequence[Dim]) -> tuple[Dim, Dim, Dim]:
    """The model row's (height, width, channels)."""
    if spec.model_layout == "CHW":
        return row[1], row[2], row[0]
    return row[0], row[1], row[2]


def check_image_plan(spec: TensorInput, row: Sequence[Dim], dtype: np.dtype[Any]) -> Why | None:
    if spec.layout is None:
        return None
    if len(row) != 3:
        return (
            "shape",
            f"layout {spec.layout} needs a rank-3 image per reading, the model has {len(row)}",
        )
    h, w, c = _hwc_of(spec, row)
    pre = spec.preprocess
    if pre is not None:
        if (pre.scale is not None or pre.mean is not None or pre.std is not None) and (
            dtype.kind != "f"
        ):
            return "dtype", f"scale / mean / std make floats, the model wants {dtype.name}"
        for what, per in (("mean", pre.mean), ("std", pre.std)):
            if per is not None and _static(c) and len(per) not in (1, c):
                return "shape", f"{what} has {len(per)} values, the model has {c} channels"
        if pre.resize is not None:
            for name, got, want in (("height", pre.resize[0], h), ("width", pre.resize[1], w)):
                if _static(want) and got != want:
                    return "shape", f"resize gives {name} {got}, the model takes {want}"
        if pre.channel_order == "bgr" and _static(c) and c != 3:
            return "shape", f"channel_order bgr needs 3 channels, the model has {c}"
    return None


def _resize(img: Array, height: int, width: int) -> Array:
    """Bilinear resize of an HWC float32 image (half-pixel centres, edges clamped)."""
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img

    def axis(n_in: int, n_out: int) -> tuple[Array, Array, Array]:
        pos = np.clip((np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5, 0, None)
        lo = np.minimum(pos.astype(np.int64), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    y0, y1, fy = axis(h, height)
    x0, x1, fx = axis(w, width)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bottom = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    out: Array = top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
    return out


def _image(spec: TensorInput, arr: Array) -> Array:
    img: Array = arr.astype(np.float32, copy=False)
    if spec.layout == "CHW":
        img = img.transpose(1, 2, 0)
    pre = spec.preprocess
    if pre is not None:
        if pre.resize is not None:
            img = _resize(img, pre.resize[0], pre.resize[1])
        if pre.channel_order == "bgr":
            img = img[..., ::-1]
        if pre.scale is not None:
            img = img * np.float32(pre.scale)
        if pre.mean is not None:
            img = img - np.asarray(pre.mean, np.float32)
        if pre.std is not None:
            img = img / np.asarray(pre.std, np.float32)
    return img.transpose(2, 0, 1) if spec.model_layout == "CHW" else img


def _source(spec: TensorInput, row: Sequence[Dim], reading: Reading) -> Array | Why:
    t = reading.tensors.get(spec.value)
    if t is not None:
        return t.array
    v = reading.values.get(spec.value)
    if v is None:
        return "value_missing", f"reading has no {spec.value!r}"
    if isinstance(v, list) and len(row) == 1:
        return np.asarray(v, np.float64)  # a flat array for a rank-1 input
    kind = "an array" if isinstance(v, list) else "a number"
    return "wrong_type", f"{spec.value!r} is {kind}, the model takes a rank-{len(row)} tensor"


def prepare_tensor(
    spec: TensorInput, row: Sequence[Dim], dtype: np.dtype[Any], reading: Reading
) -> Array | Why:
    """The reading's tensor as the model's row (shape and dtype), or (reason, detail)."""
    arr = _source(spec, row, reading)
    if isinstance(arr, tuple):
        return arr
    name = spec.value
    want_rank = 3 if spec.layout is not None else len(row)
    if arr.ndim != want_rank:
        return (
            "wrong_shape",
            f"{name!r} has shape {list(arr.shape)}, the model takes rank {want_rank}",
        )
    if spec.layout is not None:
        c = arr.shape[2] if spec.layout == "HWC" else arr.shape[0]
        pre = spec.preprocess
        if pre is not None and pre.mean is not None and len(pre.mean) not in (1, c):
            return "wrong_shape", f"{name!r} has {c} channels, mean has {len(pre.mean)}"
        if pre is not None and pre.channel_order == "bgr" and c != 3:
            return "wrong_shape", f"{name!r} has {c} channels, channel_order bgr needs 3"
        arr = _image(spec, arr)
    elif dtype.kind in "iub" and arr.dtype.kind == "f" and not np.array_equal(arr, np.trunc(arr)):
        return "wrong_dtype", f"{name!r} holds fractions, the model takes {dtype.name}"
    elif dtype.kind in "iu" and arr.dtype.kind in "iuf" and arr.size:
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            return "wrong_dtype", f"{name!r} holds values outside {dtype.name}"
    if any(_static(d) and d != a for d, a in zip(row, arr.shape, strict=True)):
        dims = ",".join("?" if not _static(d) else str(d) for d in row)
        return "wrong_shape", f"{name!r} is {list(arr.shape)}, the model takes [{dims}]"
    return np.ascontiguousarray(arr.astype(dtype, copy=False))
