"""decode(): batch validation with per-message fallback; every invalid message keeps a reason."""

from __future__ import annotations

import json
import uuid
from typing import Any

from edgecloud.adapters.kafka_consumer import RawMessage
from edgecloud.cloud.worker.decode import decode
from edgecloud.core.events import reading_event_id
from helpers.readings import reading_event

DLQ = "p.edgecloud.dead-letters"


def heartbeat(role: str = "agent") -> dict[str, Any]:
    return {
        "schema": "edgecloud.event/v1",
        "event_id": str(uuid.uuid4()),
        "type": "heartbeat",
        "node_id": "edge-a",
        "ts": "2026-11-22T10:00:00Z",
        "data": {"counters": {"received": 1, "processed": 1, "dead_letters": 0}, "role": role},
    }


def msg(value: bytes | dict[str, Any], offset: int = 0, topic: str = "p.edgecloud.readings"):
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return RawMessage(topic, 0, offset, None, raw)


def test_valid_batch_is_split_by_type() -> None:
    msgs = [msg(reading_event("d1", i), i) for i in range(5)] + [msg(heartbeat(), 5)]
    out = decode(msgs, DLQ)
    assert [ev.data.seq for _, ev in out.readings] == [0, 1, 2, 3, 4]
    assert len(out.heartbeats) == 1
    assert out.dead_letters == []


def test_invalid_messages_become_dead_letters_and_the_rest_passes() -> None:
    missing = reading_event("d1", 9)
    del missing["data"]
    wrong_type = reading_event("d1", 10)
    wrong_type["type"] = "gossip"
    msgs = [
        msg(reading_event("d1", 1), 0),
        msg(b"not json", 1),
        msg(missing, 2),
        msg(wrong_type, 3),
        msg(b'{"schema": "edgecloud.event/v1"} trailing', 4),
        msg(reading_event("d1", 2), 5),
    ]
    out = decode(msgs, DLQ)
    assert [ev.data.seq for _, ev in out.readings] == [1, 2]
    reasons = {d.offset: d.reason for d in out.dead_letters}
    assert reasons == {1: "bad_json", 2: "missing_field", 3: "bad_type", 4: "bad_json"}
    assert all(d.payload and d.detail for d in out.dead_letters)


def test_nan_and_infinity_are_refused() -> None:
    nan = json.dumps(reading_event("d1", 1)).replace('"t": 1.5', '"t": NaN').encode()
    inf_in_array = (
        json.dumps(reading_event("d1", 2, a=[1.0, 2.0])).replace("2.0]", "1e400]").encode()
    )
    out = decode([msg(nan, 0), msg(inf_in_array, 1), msg(reading_event("d1", 3), 2)], DLQ)
    assert [ev.data.seq for _, ev in out.readings] == [3]
    assert [(d.offset, d.reason) for d in out.dead_letters] == [
        (0, "non_finite"),
        (1, "non_finite"),
    ]
    assert out.dead_letters[0].event_id == str(reading_event_id("d1", 1))


def test_two_events_in_one_message_are_not_merged_into_the_batch() -> None:
    a, b = json.dumps(reading_event("d1", 1)), json.dumps(reading_event("d1", 2))
    out = decode([msg(f"{a},{b}".encode(), 0), msg(reading_event("d1", 3), 1)], DLQ)
    assert [ev.data.seq for _, ev in out.readings] == [3]
    assert [d.offset for d in out.dead_letters] == [0]


def test_dead_letter_topic_messages_are_kept_with_their_reason() -> None:
    edge = {"reason": "too_large", "detail": "70000 bytes", "node_id": "edge-b", "payload": "x"}
    out = decode([msg(edge, 7, topic=DLQ), msg(b"\x00raw", 8, topic=DLQ)], DLQ)
    assert [(d.reason, d.node_id, d.offset) for d in out.dead_letters] == [
        ("too_large", "edge-b", 7),
        ("edge_dead_letter", None, 8),
    ]
    assert out.dead_letters[1].payload == b"\x00raw"  # kept as it came; the row is text:
    assert out.dead_letters[1].cloud_row()["payload"] == "\ufffdraw"


def test_integers_too_large_for_a_double_are_refused() -> None:
    big = json.dumps(reading_event("d1", 1)).replace('"t": 1.5', '"t": ' + "9" * 400).encode()
    out = decode([msg(big, 0), msg(reading_event("d1", 2, a=[1, 2], b=3), 1)], DLQ)
    assert [ev.data.seq for _, ev in out.readings] == [2]
    assert [(d.offset, d.reason) for d in out.dead_letters] == [(0, "non_finite")]
