"""The fast event checks never disagree with their reference (``core.wire.validate``).

Whatever ``fast_header`` accepts, pydantic accepts with the same event id, type, node and
device; ``check_message`` and ``check_message_reference`` give the same events (as JSON) and
dead letters (reason, ids, payload as JSON) over a corpus of valid envelopes and mutations of
them, sent alone and in arrays as the edge outbox writes them (and as other writers might).
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from edgecloud.core.events import EnvelopeHeader
from edgecloud.core.wire import DeadLetter, validate
from edgecloud.core.wire.validate import (
    Checked,
    check_message,
    check_message_reference,
    fast_header,
)
from edgecloud.sync.route import Router

NODE = "edge-a"


def _valid(rng: random.Random) -> dict[str, Any]:
    etype = rng.choice(["reading", "heartbeat", "model_status"])
    frac = rng.choice(["", ".1", ".123", ".123456"])
    zone = rng.choice(["Z", "+00:00"])
    return {
        "schema": "edgecloud.event/v1",
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "type": etype,
        "node_id": NODE,
        "device_id": f"dev-{rng.randrange(100)}" if etype == "reading" else None,
        "ts": f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T"
        f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}{frac}{zone}",
        "data": {"seq": rng.randrange(10**6), "values": {"t": rng.random()}},
    }


_BAD_VALUES: list[Any] = [
    None, 1, 1.5, True, "", "x" * 65, "a b", "a\n", "ÄÖ", [], {}, "2026-02-30T00:00:00Z",
    "2026-01-01T24:00:00Z", "2026-01-01T00:00:00+01:00", "2026-01-01 00:00:00Z", "2026-01-01",
    "2026-01-01T00:00:00", "2026-01-01T00:00:00.1234567Z", "00000000-0000-0000-0000-00000000000g",
    "0123456789ABCDEF0123456789ABCDEF", "{01234567-89ab-cdef-0123-456789abcdef}",
    "01234567-89AB-CDEF-0123-456789ABCDEF", "01234567-89ab-cdef-0123-456789abcdef\n",
    "reading ", "edgecloud.event/v2", "model_status", "heartbeat",
]  # fmt: skip


def _mutations(rng: random.Random, ev: dict[str, Any]) -> list[bytes]:
    out = [json.dumps(ev).encode()]
    for key in list(ev):
        bad = dict(ev)
        bad[key] = rng.choice(_BAD_VALUES)
        out.append(json.dumps(bad).encode())
        missing = dict(ev)
        del missing[key]
        out.append(json.dumps(missing).encode())
    raw = json.dumps(ev)
    out += [
        raw.replace('"schema"', '"schema_"').encode(),
        (raw[:-1] + ', "schema_": "edgecloud.event/v1"}').encode(),
        (raw[:-1] + ', "extra": {"nested": [1, 2]}}').encode(),
        (raw[:-1] + ', "event_id": "not-a-uuid"}').encode(),  # duplicate key: the last wins
        raw.replace('"t": ', '"t": NaN, "u": ').encode(),
        raw.replace('"t": ', '"t": Infinity, "u": ').encode(),
        raw.encode("utf-16"),
        b"\xef\xbb\xbf" + raw.encode(),
        raw.encode()[:-1],
        b" " + raw.encode() + b"\n",
        b'"' + raw.encode() + b'"',
        b"null",
        b"\xff\xfe",
    ]
    return out


def _pydantic(payload: bytes) -> tuple[str, str, str, str | None] | None:
    try:
        env = EnvelopeHeader.model_validate_json(payload)
    except ValidationError:
        return None
    return str(env.event_id), env.type, env.node_id, env.device_id


def _corpus() -> list[bytes]:
    rng = random.Random(20261202)
    corpus: list[bytes] = []
    for _ in range(300):
        corpus += _mutations(rng, _valid(rng))
    return corpus


CORPUS = _corpus()


def test_corpus_exercises_both_paths() -> None:
    accepted = sum(1 for p in CORPUS if fast_header(p) is not None)
    refused_by_pydantic = sum(1 for p in CORPUS if _pydantic(p) is None)
    assert accepted > 300
    assert refused_by_pydantic > 1000


def test_fast_header_accepts_only_what_pydantic_accepts_with_equal_values() -> None:
    for payload in CORPUS:
        fast = fast_header(payload)
        if fast is not None:
            assert fast == _pydantic(payload), payload


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _summary(out: list[Checked]) -> list[tuple[object, ...]]:
    return [
        ("dead", c.reason, c.event_id, c.node_id, _json(c.payload))
        if isinstance(c, DeadLetter)
        else ("ok", c.event_id, c.type, c.node_id, c.device_id, _json(c.raw))
        for c in out
    ]


def _arrays() -> list[bytes]:
    """Compact arrays of corpus items (what the outbox writes), some with a spaced one."""
    rng = random.Random(20261203)
    items = [p for p in CORPUS if p[:1] == b"{" and p.endswith(b"}")]
    out = []
    for _ in range(150):
        part = rng.sample(items, rng.randrange(1, 8))
        compact = []
        for p in part:
            try:
                compact.append(json.dumps(json.loads(p), separators=(",", ":")).encode())
            except ValueError:
                compact.append(p)
        out.append(b"[" + b",".join(compact) + b"]")
        out.append(b"[" + b", ".join(part) + b"]")
    return out


ARRAYS = _arrays()


@pytest.mark.parametrize("etype", ["reading", "heartbeat", "model_status"])
def test_check_message_equals_its_reference(etype: str) -> None:
    topic = f"edgecloud/{NODE}/events/{etype}"
    for payload in CORPUS + ARRAYS:
        fast = check_message(topic, NODE, etype, payload)
        ref = check_message_reference(topic, NODE, etype, payload)
        assert _summary(fast) == _summary(ref), payload


def test_outbox_arrays_go_out_as_their_slices() -> None:
    rng = random.Random(7)
    events = [_valid(rng) for _ in range(600)]
    readings = [
        json.dumps(e, separators=(",", ":")).encode() for e in events if e["type"] == "reading"
    ]
    payload = b"[" + b",".join(readings) + b"]"
    out = check_message(f"edgecloud/{NODE}/events/reading", NODE, "reading", payload)
    assert [c.raw for c in out if not isinstance(c, DeadLetter)] == readings


def test_arrays_exercise_the_cut() -> None:
    """Compact arrays are cut into their exact slices; spaced ones are checked whole."""
    compact, spaced = ARRAYS[::2], ARRAYS[1::2]
    cut = [p for p in compact if validate._cut(p) is not None]
    assert len(cut) > 40
    assert all(validate._cut(p) is None for p in spaced if b"}, {" in p)
    topic = f"edgecloud/{NODE}/events/reading"
    forwarded = [
        c.raw
        for p in cut
        for c in check_message(topic, NODE, "reading", p)
        if not isinstance(c, DeadLetter)
    ]
    assert len(forwarded) > 5
    assert all(any(raw in p for p in cut) for raw in forwarded)


@pytest.mark.parametrize("etype", ["reading", "heartbeat", "model_status"])
def test_router_records_equal_with_the_reference(etype: str) -> None:
    """Single events: the same records byte for byte (a single event keeps its bytes)."""
    router = Router("p.")
    reference = Router("p.")
    reference.check = check_message_reference
    topic = f"edgecloud/{NODE}/events/{etype}"
    for payload in CORPUS:
        a, b = router.route(topic, payload), reference.route(topic, payload)
        assert [(r.topic, r.key, r.value, r.headers) for r in a] == [
            (r.topic, r.key, r.value, r.headers) for r in b
        ], payload
