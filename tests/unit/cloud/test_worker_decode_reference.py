"""decode() (joined-batch validation, per-message fallback) equals decode_reference() (every
message validated on its own) over a large generated corpus of valid, invalid and mutated
messages: same accepted events with equal field values, same dead letters and reasons."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest

from edgecloud.adapters.kafka_consumer import RawMessage
from edgecloud.cloud.worker import decode as decode_mod
from edgecloud.cloud.worker.decode import Decoded, decode, decode_reference
from edgecloud.core.events import EVENT_ADAPTER, reading_event_id

DLQ = "p.edgecloud.dead-letters"
TOPIC = "p.edgecloud.readings"


def _reading(rng: random.Random, i: int) -> dict[str, Any]:
    dev = f"press-{i % 7:02d}"
    values: dict[str, Any] = {"temperature": round(rng.uniform(-40, 120), 3), "count": i}
    if rng.random() < 0.5:
        values["spectrum"] = [rng.gauss(0, 1) for _ in range(rng.randint(1, 8))]
    if rng.random() < 0.3:
        values["a.b:c_d-e"] = rng.randint(-(2**62), 2**62)
    data: dict[str, Any] = {"seq": i, "values": values}
    roll = rng.random()
    if roll < 0.6:
        data["inference"] = {
            "model": "vibration-iforest",
            "version": "1.2.0",
            "score": rng.random(),
            "anomaly": rng.random() < 0.1,
            "escalate": rng.random() < 0.05,
            "latency_ms": rng.random() * 3,
            "outputs": {"score": rng.random(), "labels": ["ok", "fault"], "n": {"x": [1, 2.5]}},
            "label": rng.choice(["ok", 3, None]),
            "confidence": rng.choice([None, 0.9, 1]),
        }
    elif roll < 0.7:
        data["inference"] = None
    ts = rng.choice(
        [
            "2026-11-22T10:00:00.123Z",
            "2026-11-22T12:00:00+02:00",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:00.123456-05:30",
            1795312800,
            1795312800.25,
        ]
    )
    return {
        "schema": "edgecloud.event/v1",
        "event_id": str(reading_event_id(dev, i)),
        "type": "reading",
        "node_id": f"edge-{i % 3}",
        "device_id": dev,
        "ts": ts,
        "data": data,
    }


def _heartbeat(rng: random.Random) -> dict[str, Any]:
    return {
        "schema": "edgecloud.event/v1",
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "type": "heartbeat",
        "node_id": "edge-a",
        "ts": "2026-11-22T10:00:00Z",
        "data": {
            "counters": {"received": 1, "processed": 1, "dead_letters": 0},
            "role": rng.choice(["agent", "bridge"]),
            "labels": {"site": "a"},
            "spool_depth": rng.randint(0, 9),
        },
    }


def _model_status(rng: random.Random) -> dict[str, Any]:
    return {
        "schema": "edgecloud.event/v1",
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "type": "model_status",
        "node_id": "edge-b",
        "ts": "2026-11-22T10:00:01Z",
        "data": {"model": "m", "version": "1.0.0", "phase": rng.choice(["loaded", "active"])},
    }


ODD: list[Any] = [
    None, True, False, 0, -1, 1.5, 2**63, 10**400, 1e308, "x", "", [], [1], [1, True],
    [1.0, None], {}, {"a": 1}, [[1]], "edge a", "a" * 65, "é", -0.0, "NaN",
]  # fmt: skip
BAD_IDS = [
    "0B6F3C1E-2A4B-5C6D-8E9F-0123456789AB",
    "{0b6f3c1e-2a4b-5c6d-8e9f-0123456789ab}",
    "urn:uuid:0b6f3c1e-2a4b-5c6d-8e9f-0123456789ab",
    "0b6f3c1e2a4b5c6d8e9f0123456789ab",
    "0b6f3c1e-2a4b-5c6d-8e9f-0123456789a",
    "not-a-uuid",
    12,
]
BAD_TS = [
    "2026-11-22T10:00:00",
    "2026-11-22T10:00:00.1234567Z",
    "2026-11-22t10:00:00z",
    "2026-02-30T10:00:00Z",
    "2026-11-22T24:00:00Z",
    "2026-11-22T10:00:00+24:00",
    "2026-11-22",
    "yesterday",
    -1,
    1e20,
    "",
]
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 400]


def _mutate(rng: random.Random, ev: dict[str, Any]) -> bytes:
    ev = json.loads(json.dumps(ev))
    for _ in range(rng.randint(1, 2)):
        kind = rng.randrange(10)
        data = ev.get("data") if isinstance(ev.get("data"), dict) else None
        if kind == 0:
            ev.pop(rng.choice(list(ev) or ["x"]), None)  # missing field
        elif kind == 1:
            ev[rng.choice(["schema", "type", "node_id", "device_id", "data"])] = rng.choice(ODD)
        elif kind == 2:
            ev["event_id"] = rng.choice(BAD_IDS)
        elif kind == 3:
            ev["ts"] = rng.choice(BAD_TS)
        elif kind == 4:
            ev["schema"] = rng.choice(["edgecloud.event/v2", "edgecloud.event/v0", ""])
        elif kind == 5:
            ev[rng.choice(["extra", "schema_", "Type"])] = rng.choice(ODD)  # extra fields
        elif kind == 6 and data is not None:
            if isinstance(data.get("values"), dict) and data["values"]:
                name = rng.choice(list(data["values"]))
                data["values"][name] = rng.choice(ODD)
            else:
                data[rng.choice(["seq", "values", "inference"])] = rng.choice(ODD)
        elif kind == 7 and data is not None:
            data.pop(rng.choice(["seq", "values", "counters", "model", "phase"]), None)
        elif kind == 8 and data is not None and isinstance(data.get("inference"), dict):
            field = rng.choice(["score", "anomaly", "model", "outputs", "label", "latency_ms"])
            data["inference"][field] = rng.choice(ODD)
        elif kind == 9:
            ev["type"] = rng.choice(["gossip", "Reading", "heartbeat", "model_status", "reading"])
    text = json.dumps(ev)
    roll = rng.random()
    if roll < 0.15:  # a number no finite double holds, or NaN, in a float position
        for target in ('"score": ', '"temperature": ', '"latency_ms": ', '"count": '):
            if target in text:
                head, _, tail = text.partition(target)
                number_end = min(i for i in (tail.find(","), tail.find("}")) if i >= 0)
                text = head + target + rng.choice(NON_FINITE) + tail[number_end:]
                break
    elif roll < 0.2:  # duplicate keys: the last one wins in the envelope, each counts in a dict
        text = text.replace('"count": ', '"count": true, "count": ', 1)
        text = text.replace('"node_id": ', '"node_id": "bad id", "node_id": ', 1)
    elif roll < 0.25:
        text = text[: rng.randint(0, len(text))]  # truncated
    elif roll < 0.28:
        text = text.replace('"edge-', '"edge-\\u0000', 1)
    return text.encode()


def _corpus() -> list[bytes]:
    rng = random.Random(20261122)
    out: list[bytes] = []
    for i in range(2500):
        roll = rng.random()
        ev = _reading(rng, i) if roll < 0.8 else _heartbeat(rng) if roll < 0.9 else None
        if ev is None:
            ev = _model_status(rng)
        out.append(json.dumps(ev).encode() if rng.random() < 0.45 else _mutate(rng, ev))
    good = json.dumps(_reading(rng, 99999)).encode()
    out += [
        b"not json",
        b"",
        b"[]",
        b"{}",
        b"\xef\xbb\xbf" + good,
        b"\xff\xfe",
        good + b" trailing",
        good + b"," + good,
        b" " + good,
        good.replace(b"{", b"{\n", 1),
        b"[" * 300 + b"]" * 300,
        b'{"a":' * 300 + b"1" + b"}" * 300,
        b'{"schema": "edgecloud.event/v1"}',
        b'{"type": "reading"}',
    ]
    return out


def _msgs(payloads: list[bytes], start: int = 0) -> list[RawMessage]:
    return [RawMessage(TOPIC, 0, start + i, None, p) for i, p in enumerate(payloads)]


def _outcome(out: Decoded) -> Any:
    def events(pairs: list[Any]) -> list[Any]:
        return [
            (
                m.offset,
                ev,
                ev.model_fields_set,
                ev.data.model_fields_set,
                ev.ts.utcoffset(),
                ev.ts.isoformat(),
                repr(ev),
            )
            for m, ev in pairs
        ]

    return (
        events(out.readings),
        events(out.heartbeats),
        events(out.model_status),
        sorted(out.dead_letters, key=lambda d: (d.offset or 0, d.topic)),
    )


@pytest.fixture(scope="module")
def corpus() -> list[bytes]:
    return _corpus()


def test_corpus_has_both_kinds_and_many_reasons(corpus: list[bytes]) -> None:
    ref = decode_reference(_msgs(corpus), DLQ)
    assert len(ref.readings) > 800
    assert ref.heartbeats and ref.model_status
    reasons = {d.reason for d in ref.dead_letters}
    assert {"bad_json", "missing_field", "bad_type", "invalid_field", "non_finite"} <= reasons
    assert len(ref.dead_letters) > 800


@pytest.mark.parametrize("size", [1, 7, 50, 2000])
def test_decode_equals_the_reference_in_mixed_batches(corpus: list[bytes], size: int) -> None:
    for start in range(0, len(corpus), size):
        msgs = _msgs(corpus[start : start + size], start)
        assert _outcome(decode(msgs, DLQ)) == _outcome(decode_reference(msgs, DLQ)), start


def _valid_for_the_envelope(payload: bytes) -> bool:
    try:
        EVENT_ADAPTER.validate_json(payload)
    except ValueError:
        return False
    return True


def test_joined_path_equals_the_reference(
    corpus: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches the envelope accepts as a whole (non-finite inference numbers included) take the
    joined path; it must give exactly what one-by-one validation gives."""
    valid = [p for p in corpus if p.startswith(b"{") and _valid_for_the_envelope(p)]
    assert len(valid) > 1000
    batches = [_msgs(valid[i : i + 100], i) for i in range(0, len(valid), 100)]
    expected = [_outcome(decode_reference(b, DLQ)) for b in batches]
    assert any(e[3] for e in expected), "some batch has a non_finite dead letter"

    def no_fallback(out: Decoded, events: Any) -> None:
        raise AssertionError("the joined path fell back")

    monkeypatch.setattr(decode_mod, "_decode_each", no_fallback)
    got = [_outcome(decode(b, DLQ)) for b in batches]
    assert got == expected


def test_dead_letter_topic_messages_interleaved(corpus: list[bytes]) -> None:
    msgs = _msgs(corpus[:400])
    msgs = [m._replace(topic=DLQ) if m.offset % 5 == 0 else m for m in msgs]
    assert _outcome(decode(msgs, DLQ)) == _outcome(decode_reference(msgs, DLQ))
