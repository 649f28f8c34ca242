"""parse_reading: every bad input gets its own stable reason; good ones parse exactly."""

from __future__ import annotations

import hashlib
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


# --- the hand-written fast path equals the pydantic reference ------------------------------


def _outcome(fn: Any, topic: str | None, payload: bytes) -> Any:
    """A comparable outcome: (reason, detail), or the reading's fields with value types."""
    try:
        r = fn(topic, payload)
    except InvalidReading as exc:
        return ("invalid", exc.reason, exc.detail)

    def typed(v: Any) -> Any:
        return [typed(x) for x in v] if isinstance(v, list) else (type(v).__name__, v)

    values = [(k, typed(v)) for k, v in r.values.items()]
    fields = sorted(r.model_fields_set)
    return ("ok", r.device_id, type(r.seq).__name__, r.seq, r.ts, r.ts.tzinfo, values, fields)


def _corpus() -> list[tuple[str | None, bytes]]:
    import random

    odd: list[Any] = [
        None, True, False, 0, -1, 1.5, 2**63 - 1, 2**63, -(2**63), 10**400, 1e308, "x", "",
        [], [1], [1, True], [1.0, None], {}, {"a": 1}, [[1]], "press-07\n", "a" * 64, "a" * 65,
        "bad id", "é", 0.0, -0.0, 3, [0] * 3, list(range(5)),
    ]  # fmt: skip
    names = ["t", "a.b:c_d-e", "", "x" * 64, "x" * 65, "bad name", "ü", "t\n", "1"]
    good = [
        GOOD,
        {**GOOD, "ts": 1764000000},
        {**GOOD, "ts": 1764000000.25, "extra": [1, 2]},
        {**GOOD, "ts": "2026-11-22T10:00:00+02:00", "seq": 0},
        {**GOOD, "seq": 2**63 - 1, "values": {"n": 10**300, "m": -5}},
        {**GOOD, "values": {f"v{i}": i * 0.5 for i in range(1024)}},
        {**GOOD, "values": {"audio": [0.5] * 65_536}},
    ]
    payloads: list[bytes] = [json.dumps(g).encode() for g in good]
    rng = random.Random(20261122)
    for _ in range(3000):
        data = json.loads(json.dumps(rng.choice(good[:5])))
        if rng.random() < 0.4:  # still valid: other numbers, arrays, names
            for name in rng.sample(["t", "a.b:c_d-e", "x" * 64, "1", "temperature"], 3):
                data["values"][name] = rng.choice([
                    rng.uniform(-1e6, 1e6), rng.randint(-(2**62), 2**62), rng.random() * 1e-300,
                    [rng.gauss(0, 1) for _ in range(rng.randint(1, 20))], [rng.randint(0, 9)],
                ])  # fmt: skip
            payloads.append(json.dumps(data).encode())
            continue
        for _ in range(rng.randint(1, 3)):
            field = rng.choice(["device_id", "seq", "ts", "values", "values", "values"])
            roll = rng.random()
            if roll < 0.15:
                data.pop(field, None)
            elif field == "values" and isinstance(data.get("values"), dict) and roll < 0.8:
                vals = data["values"]
                if vals and rng.random() < 0.5:
                    vals[rng.choice(list(vals))] = rng.choice(odd)
                elif rng.random() < 0.5:
                    vals[rng.choice(names)] = rng.choice(odd)
                else:
                    vals.clear()
            else:
                data[field] = rng.choice(odd)
        text = json.dumps(data, allow_nan=True)
        if rng.random() < 0.1:
            text = text.replace("0.41", rng.choice(["NaN", "Infinity", "-Infinity", "1e400"]))
        payloads.append(text.encode())
    payloads += [b"\xef\xbb\xbf" + payloads[0], b"\xff", b"[]", b"{", b"", b"{}", b"1e400"]
    # where orjson (the fast path's parser) and json could differ
    base = payloads[0].decode()
    payloads += [
        (base[:-1] + ', "seq": 7, "seq": 8}').encode(),  # duplicate keys: refused
        base.replace('"values": {', '"values": {"t": 1, "t": 2, ').encode(),
        base.replace('"values": {', '"values": {"q\\"": 1, ').encode(),  # an escaped quote
        (base[:-1] + ', "x": {"a": "\\"", "b": [{"c": 1}]}}').encode(),
        base.replace('"values": {', '"values": {"big": 99999999999999999999, ').encode(),
        base.replace('"values": {', '"values": {"long": 0.12345678901234567891, ').encode(),
        base.replace('"values": {', '"values": {"neg": -9223372036854775808, ').encode(),
        base.replace('"seq": ', '"seq": 123456789012345678901 , "x": ').encode(),
        base.replace('"values": {', '"values": {"s\\ud800": 1, ').encode(),
        base.replace('"values": {', '"values": {"e": 1E5, "f": -0.0, "g": 5e-324, ').encode(),
        b"  \n" + payloads[0] + b"\t ",
    ]
    out: list[tuple[str | None, bytes]] = []
    for i, p in enumerate(payloads):
        topic = [TOPIC, None, TOPIC, TOPIC, "devices/other/telemetry", "nope"][i % 11 % 6]
        out.append((topic, p))
    return out


def test_fast_path_equals_the_pydantic_reference() -> None:
    from edgecloud.core.readings import parse_reading_reference

    corpus = _corpus()
    outcomes = [(_outcome(parse_reading, t, p), _outcome(parse_reading_reference, t, p))
                for t, p in corpus]  # fmt: skip
    for (topic, payload), (fast, ref) in zip(corpus, outcomes, strict=True):
        assert fast == ref, (topic, payload[:300])
        if fast[0] == "ok":
            assert parse_reading(topic, payload) == parse_reading_reference(topic, payload)
    # the corpus has both kinds, and many reasons
    assert sum(f[0] == "ok" for f, _ in outcomes) > 300
    assert len({f[1] for f, _ in outcomes if f[0] == "invalid"}) >= 8


def test_fast_path_takes_the_common_shape() -> None:
    from edgecloud.core.readings import _fast_reading

    ts = datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert _fast_reading(json.loads(body()), ts) is not None
    assert _fast_reading(json.loads(body(seq=True)), ts) is None  # bool is not a strict int


# --- duplicate keys, the ts window, bounded dead letters (issue 20) ---------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b'{"device_id": "press-07", "device_id": "evil", "seq": 1, "ts": 1, "values": {"t": 1}}',
        b'{"device_id": "press-07", "seq": 1, "ts": 1, "values": {"t": 1, "t": 2}}',
        b'{"device_id": "press-07", "seq": 1, "ts": 1, "values": {"t": 1}, "x": {"k": 1, "k": 1}}',
        b'{"device_id": "press-07", "seq": 1, "seq": 1, "ts": 1, "values": {"t": 1}}',
    ],
)
def test_duplicate_keys_are_refused_on_both_paths(payload: bytes) -> None:
    from edgecloud.core.readings import parse_reading_reference

    assert reason(TOPIC, payload) == "duplicate_key"
    with pytest.raises(InvalidReading) as info:
        parse_reading_reference(TOPIC, payload)
    assert info.value.reason == "duplicate_key"


def test_an_escaped_quote_is_no_duplicate() -> None:
    payload = b'{"device_id": "press-07", "seq": 1, "ts": 1, "note": "a\\"b", "values": {"t": 1}}'
    assert parse_reading(TOPIC, payload).values == {"t": 1}


def test_quote_count_matches_what_json_writes() -> None:
    from edgecloud.core.jsonkeys import duplicate_key, maybe_duplicates, quotes

    value = {"a": ["x", 1, {"b": None, "c": [["y"]]}], "d": "z", "e": 2.5}
    text = json.dumps(value).encode()
    assert quotes(value) == text.count(b'"') == 16
    assert not maybe_duplicates(text, value)
    for arr in (
        [],
        [1, 2.5, True],
        [[1, 2], [3]],
        [None, 1],
        [1, "a"],
        [10**400, 1.0],
        [[], ["b"]],
    ):
        assert quotes(arr) == json.dumps(arr).count('"'), arr
    repeated = b'{"a": 1, "b": {"c": 1, "c": 2}}'
    assert maybe_duplicates(repeated, json.loads(repeated))
    assert duplicate_key(repeated) == "c"
    assert duplicate_key(b'{"a": "\\"", "b": 1}') is None
    assert duplicate_key(b"{not json") is None


@pytest.mark.parametrize(
    ("ts", "ok"),
    [
        ("9999-12-31T23:59:59Z", False),
        ("0001-01-01T00:00:00Z", False),
        (0, False),
        (1_000_000_000.0 - 31 * 86400, False),  # older than the 30 days
        (1_000_000_000.0 - 29 * 86400, True),
        (1_000_000_000.0 + 3599, True),
        (1_000_000_000.0 + 3601, False),  # more than an hour ahead
    ],
)
def test_ts_window_around_the_receive_time(ts: Any, ok: bool) -> None:
    from edgecloud.core.readings import (
        DEFAULT_TS_MAX_FUTURE_S,
        DEFAULT_TS_MAX_PAST_S,
        check_ts_window,
    )

    r = parse_reading(TOPIC, body(ts=ts))
    window = (DEFAULT_TS_MAX_PAST_S, DEFAULT_TS_MAX_FUTURE_S)
    if ok:
        check_ts_window(r, 1_000_000_000.0, *window)
    else:
        with pytest.raises(InvalidReading) as info:
            check_ts_window(r, 1_000_000_000.0, *window)
        assert info.value.reason == "bad_timestamp" and "window" in info.value.detail


def test_broker_limit_follows_the_agents_limit() -> None:
    from edgecloud.core.readings import bounded_payload, broker_message_limit

    assert broker_message_limit() == 1024 * 1024  # 16 x 64 KiB
    assert broker_message_limit(4096) == 1024 * 1024  # at least 1 MiB (event batches)
    assert broker_message_limit(4 * 1024 * 1024) == 64 * 1024 * 1024
    prefix, summary = bounded_payload(b"x" * 10_000, 100)
    assert prefix == b"x" * 100
    digest = hashlib.sha256(b"x" * 10_000).hexdigest()
    assert summary == f"10000 bytes, sha256 {digest}"
