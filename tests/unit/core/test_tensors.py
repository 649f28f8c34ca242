"""Tensor reading values: nested arrays and the binary form, their limits and reasons."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import numpy as np
import pytest

from edgecloud.core.errors import InvalidReading
from edgecloud.core.readings import parse_reading, parse_reading_reference
from edgecloud.core.tensors import TensorLimits, encode_binary, tensor_digest

TOPIC = "devices/cam-1/telemetry"


def payload(values: dict[str, Any]) -> bytes:
    return json.dumps(
        {"device_id": "cam-1", "seq": 1, "ts": 1795312800.0, "values": values}
    ).encode()


@pytest.mark.parametrize("parse", [parse_reading, parse_reading_reference])
def test_nested_and_binary_forms_decode_to_the_same_tensor(parse: Any) -> None:
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    a = parse(TOPIC, payload({"t": arr.tolist(), "x": 1.5}), 1 << 20)
    b = parse(TOPIC, payload({"t": encode_binary(arr)}), 1 << 20)
    assert a.values == {"x": 1.5} and b.values == {}
    assert a.tensors["t"].shape == b.tensors["t"].shape == [2, 3, 4]
    assert np.array_equal(a.tensors["t"].array, b.tensors["t"].array)
    assert b.tensors["t"].sha256 == tensor_digest(arr)
    # what the edge store keeps: the sha256 of the raw little-endian bytes alone
    raw_sha = hashlib.sha256(arr.tobytes()).hexdigest()
    assert b.tensors["t"].digest() == {"dtype": "float32", "shape": [2, 3, 4], "sha256": raw_sha}


def test_a_tensor_reading_is_the_same_on_both_parse_paths() -> None:
    body = payload({"t": [[1, 2], [3, 4]], "x": 2})
    assert parse_reading(TOPIC, body) == parse_reading_reference(TOPIC, body)


def _b64(n: int) -> str:
    return base64.b64encode(bytes(n)).decode()


NAN_B64 = base64.b64encode(np.float32("nan").tobytes()).decode()


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [
        ([[1, 2], [3]], "bad_tensor", "rectangular"),
        ([[1, 2], [3, "a"]], "bad_tensor", "rectangular"),
        ([[1, 2], [3, True]], "bad_tensor", "true/false"),
        ([[]], "bad_tensor", "empty"),
        ({"dtype": "uint8", "shape": [2, 2], "b64": _b64(3)}, "bad_tensor", "3 bytes"),
        ({"dtype": "complex64", "shape": [2], "b64": _b64(16)}, "bad_tensor", "dtype"),
        ({"dtype": "uint8", "shape": [2, 0], "b64": ""}, "bad_tensor", "shape"),
        ({"dtype": "uint8", "shape": [4], "b64": "!!!!"}, "bad_tensor", "base64"),
        ({"dtype": "uint8", "shape": [4], "b64": _b64(4), "x": 1}, "bad_tensor", "nothing else"),
        ({"dtype": "float32", "shape": [1], "b64": NAN_B64}, "non_finite", "non-finite"),
        ({"dtype": "uint8", "shape": [64, 64, 64], "b64": ""}, "too_large", "limit"),
    ],
)  # fmt: skip
def test_bad_tensors_are_refused_with_a_reason(value: Any, reason: str, detail: str) -> None:
    limits = TensorLimits(max_bytes=100_000)
    for parse in (parse_reading, parse_reading_reference):
        with pytest.raises(InvalidReading) as info:
            parse(TOPIC, payload({"t": value}), 1 << 20, limits)
        assert info.value.reason == reason
        assert detail in info.value.detail
