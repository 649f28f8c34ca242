"""The fast reading-event JSON equals the envelope of core.events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from edgecloud.core.events import EVENT_LIST_ADAPTER, InferenceResult, reading_event
from edgecloud.core.readings import Reading
from edgecloud.core.wire.encode import chunked_arrays, reading_event_json


def test_reading_event_json_matches_core_envelope() -> None:
    reading = Reading(
        device_id="press-07", seq=1234, ts=datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC),
        values={"temperature": 71.2, "audio": [0.0, 0.01], "count": 3},
    )  # fmt: skip
    inf = InferenceResult(model="m", version="1.0.0", score=0.9, anomaly=True, latency_ms=0.1)
    text = reading_event_json(
        "edge-a", reading.device_id, reading.seq, reading.ts,
        json.dumps(reading.values), inf.model_dump_json(),
    )  # fmt: skip
    [parsed] = EVENT_LIST_ADAPTER.validate_json("[" + text + "]")
    assert parsed == reading_event("edge-a", reading, inf)
    no_inf = reading_event_json("edge-a", "d", 1, reading.ts, '{"t":1}', None)
    assert json.loads(no_inf)["data"]["inference"] is None


def test_chunked_arrays() -> None:
    chunks = list(chunked_arrays(['{"a":1}'] * 5, 2))
    assert [n for _, n in chunks] == [2, 2, 1]
    assert json.loads(chunks[0][0]) == [{"a": 1}, {"a": 1}]


def test_event_id_text_equals_core_uuid5() -> None:
    from edgecloud.core.events import reading_event_id
    from edgecloud.core.wire.encode import event_id_text

    for device, seq in [("a", 0), ("press-07", 1234), ("x.y_z-9", 2**63 - 1)] + [
        (f"d{i}", i * 7919) for i in range(500)
    ]:
        assert event_id_text(device, seq) == str(reading_event_id(device, seq))


def test_chunked_arrays_stay_under_the_broker_limit() -> None:
    events = ['{"a":' + "1" * n + "}" for n in (10, 500, 30, 900, 5, 5)]
    chunks = list(chunked_arrays(events, 200, 1000))
    assert sum(n for _, n in chunks) == 6
    assert [json.loads(text) for text, _ in chunks] == [
        [json.loads(e) for e in events[:3]],
        [json.loads(e) for e in events[3:]],
    ]
    assert all(len(text) <= 1000 for text, _ in chunks)
    # under the limit, the arrays are as before: per_message events each
    assert [n for _, n in chunked_arrays(events, 4, 10**6)] == [4, 2]
