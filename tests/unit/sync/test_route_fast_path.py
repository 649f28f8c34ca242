"""The bridge's fast envelope check never disagrees with pydantic's ``EnvelopeHeader``.

Whatever ``fast_header`` accepts, pydantic accepts with the same event id, type, node and
device; and the router's records (topic, key, value, headers, dead-letter reason) are the same
with and without the fast path, over a corpus of valid envelopes and mutations of them.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from edgecloud.core.events import EnvelopeHeader
from edgecloud.sync import route as route_mod
from edgecloud.sync.route import Router, fast_header

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


@pytest.mark.parametrize("etype", ["reading", "heartbeat", "model_status"])
def test_router_records_equal_with_and_without_the_fast_path(
    monkeypatch: pytest.MonkeyPatch, etype: str
) -> None:
    router = Router("p.")
    topic = f"edgecloud/{NODE}/events/{etype}"
    with_fast = [router.route(topic, p) for p in CORPUS]
    monkeypatch.setattr(route_mod, "fast_header", lambda _p: None)
    without = [router.route(topic, p) for p in CORPUS]
    for payload, a, b in zip(CORPUS, with_fast, without, strict=True):
        assert [(r.topic, r.key, r.value, r.headers) for r in a] == [
            (r.topic, r.key, r.value, r.headers) for r in b
        ], payload
