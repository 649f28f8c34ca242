"""parse_reading: every bad input gets its own stable reason; good ones parse exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from edgecloud.core.errors import InvalidReading
from edgecloud.core.readings import REASONS, device_id_from_topic, parse_reading

TOPIC = "devices/press-07/telemetry"
GOOD: dict[str, Any] = {
    "device_id": "press-07",
    "seq": 1234,
    "ts": "2026-11-22T10:00:00.123Z",
    "values": {"temperature": 71.2, "vibration_rms": 0.41, "pressure": 3, "audio": [0.0, 0.01]},
}


def body(**changes: Any) -> bytes:
    data = {**GOOD, **changes}
    for key in [k for k, v in changes.items() if v is DROP]:
        del data[key]
    return json.dumps(data).encode()


DROP = object()


def reason(topic: str | None, payload: bytes, **kwargs: Any) -> str:
    with pytest.raises(InvalidReading) as info:
        parse_reading(topic, payload, **kwargs)
    assert info.value.reason in REASONS
    assert info.value.detail
    return info.value.reason


def test_the_contract_example_parses() -> None:
    reading = parse_reading(TOPIC, json.dumps(GOOD).encode())
    assert reading.device_id == "press-07"
    assert reading.seq == 1234
    assert reading.ts == datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)
    assert reading.values["audio"] == [0.0, 0.01]
    assert reading.values["pressure"] == 3


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1795312800, datetime(2026, 11, 22, 2, 0, tzinfo=UTC)),
        (1795312800.5, datetime(2026, 11, 22, 2, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-22T12:00:00+02:00", datetime(2026, 11, 22, 10, 0, tzinfo=UTC)),
        ("2026-11-22T10:00:00z", datetime(2026, 11, 22, 10, 0, tzinfo=UTC)),
    ],
)
def test_timestamps_rfc3339_or_epoch_seconds(ts: Any, expected: datetime) -> None:
    assert parse_reading(TOPIC, body(ts=ts)).ts == expected


def test_topic_check_can_be_skipped() -> None:
    assert parse_reading(None, body()).device_id == "press-07"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\xff\xfe not utf-8", "bad_encoding"),
        (b'{"device_id": "press-07", "seq": 1', "bad_json"),
        (b"", "bad_json"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (body(seq=DROP), "missing_field"),
        (body(ts=DROP), "missing_field"),
        (body(values=DROP), "missing_field"),
        (body(device_id=DROP), "missing_field"),
        (body(seq="12"), "wrong_type"),
        (body(seq=1.5), "wrong_type"),
        (body(seq=True), "wrong_type"),
        (body(seq=-1), "wrong_type"),
        (body(device_id=7), "wrong_type"),
        (body(values=[1, 2]), "wrong_type"),
        (body(values={}), "wrong_type"),
        (body(values={"t": "hot"}), "wrong_type"),
        (body(values={"t": True}), "wrong_type"),
        (body(values={"t": None}), "wrong_type"),
        (body(values={"t": [1, "x"]}), "wrong_type"),
        (body(values={"t": []}), "wrong_type"),
        (body(values={"bad name!": 1}), "wrong_type"),
        (body(ts=True), "wrong_type"),
        (body(ts=None), "wrong_type"),
        (body(ts="yesterday"), "bad_timestamp"),
        (body(ts="2026-11-22T10:00:00"), "bad_timestamp"),
        (body(ts="2026-13-01T00:00:00Z"), "bad_timestamp"),
        (body(ts=-5), "bad_timestamp"),
        (body(ts=10**12), "bad_timestamp"),
        (body(device_id="press 07"), "bad_device_id"),
        (body(device_id="x" * 65), "bad_device_id"),
        (body(device_id=""), "bad_device_id"),
        (body(device_id="press-08"), "device_mismatch"),
    ],
)
def test_bad_input_reason(payload: bytes, expected: str) -> None:
    assert reason(TOPIC, payload) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b'{"device_id": "press-07", "seq": 1, "ts": 1, "values": {"t": NaN}}',
        b'{"device_id": "press-07", "seq": 1, "ts": 1, "values": {"t": Infinity}}',
        b'{"device_id": "press-07", "seq": 1, "ts": 1, "values": {"t": -Infinity}}',
        b'{"device_id": "press-07", "seq": 1, "ts": 1, "values": {"t": [0.1, NaN]}}',
        b'{"device_id": "press-07", "seq": 1, "ts": 1, "values": {"t": 1e400}}',
        b'{"device_id": "press-07", "seq": 1, "ts": 1, "values": {"t": [1, -1e400]}}',
        # An integer too large for any float64 is no finite number either (was OverflowError).
        b'{"device_id": "press-07", "seq": 1, "ts": 1, "values": {"t": 1' + b"0" * 400 + b"}}",
    ],
)
def test_non_finite_numbers(raw: bytes) -> None:
    assert reason(TOPIC, raw) == "non_finite"


@pytest.mark.parametrize(
    ("ts", "expected"),
    [(b"1e400", "bad_timestamp"), (b"1" + b"0" * 400, "bad_timestamp"), (b"NaN", "non_finite")],
)
def test_non_finite_timestamps(ts: bytes, expected: str) -> None:
    raw = b'{"device_id": "press-07", "seq": 1, "ts": ' + ts + b', "values": {"t": 1}}'
    assert reason(TOPIC, raw) == expected


def test_oversized_payload_is_refused_before_parsing() -> None:
    payload = body(values={"audio": [0.5] * 20_000})
    assert len(payload) > 64 * 1024
    assert reason(TOPIC, payload) == "too_large"
    assert reason(TOPIC, body(), max_bytes=10) == "too_large"
    assert parse_reading(TOPIC, payload, max_bytes=len(payload)).device_id == "press-07"


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("devices/press-07", "bad_topic"),
        ("devices/press-07/status", "bad_topic"),
        ("sensors/press-07/telemetry", "bad_topic"),
        ("devices/press-07/telemetry/x", "bad_topic"),
        ("devices/pr+ss/telemetry", "bad_device_id"),
        ("devices//telemetry", "bad_device_id"),
    ],
)
def test_bad_topics(topic: str, expected: str) -> None:
    assert reason(topic, body()) == expected


def test_device_id_from_topic() -> None:
    assert device_id_from_topic("devices/a.b_c-9/telemetry") == "a.b_c-9"


def test_deeply_nested_json_is_bad_json_not_a_crash() -> None:
    assert reason(TOPIC, b"[" * 100_000 + b"]" * 100_000, max_bytes=10**6) == "bad_json"
