"""The event envelope v1: deterministic reading ids, JSON round trips, the bridge's header."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from edgecloud.core.events import (
    EVENT_ADAPTER,
    EVENT_LIST_ADAPTER,
    SCHEMA_V1,
    EnvelopeHeader,
    HeartbeatData,
    HeartbeatEvent,
    InferenceResult,
    ModelStatusData,
    ModelStatusEvent,
    ReadingEvent,
    heartbeat_event,
    model_status_event,
    reading_event,
    reading_event_id,
)
from edgecloud.core.readings import parse_reading

PAYLOAD = (
    b'{"device_id": "press-07", "seq": 1234, "ts": "2026-11-22T10:00:00.123Z",'
    b' "values": {"temperature": 71.2, "audio": [0.0, 0.01]}}'
)


def test_reading_event_id_is_deterministic_and_distinct() -> None:
    first = reading_event_id("press-07", 1234)
    assert first == reading_event_id("press-07", 1234)
    assert first.version == 5
    assert first != reading_event_id("press-07", 1235)
    assert first != reading_event_id("press-08", 1234)
    # The separator keeps ("a1", 23) and ("a", 123) apart.
    assert reading_event_id("a1", 23) != reading_event_id("a", 123)
    # Pinned: a change here would duplicate every reading already in the cloud.
    assert str(first) == str(
        uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "edgecloud:reading"), "press-07\x1f1234")
    )


def test_reading_event_round_trip_through_json() -> None:
    reading = parse_reading("devices/press-07/telemetry", PAYLOAD)
    inference = InferenceResult(
        model="vib", version="1.0.0", score=0.93, anomaly=True, escalate=True, latency_ms=1.5
    )
    event = reading_event("edge-a", reading, inference)
    wire = json.loads(event.to_json())
    assert wire["schema"] == SCHEMA_V1
    assert wire["type"] == "reading"
    assert wire["event_id"] == str(reading_event_id("press-07", 1234))
    assert wire["data"]["seq"] == 1234
    assert wire["data"]["values"]["audio"] == [0.0, 0.01]

    back = EVENT_ADAPTER.validate_json(event.to_json())
    assert isinstance(back, ReadingEvent)
    assert back == event
    assert back.ts == datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)
    assert back.data.inference is not None and back.data.inference.anomaly


def test_same_reading_twice_is_the_same_event_id() -> None:
    reading = parse_reading(None, PAYLOAD)
    assert reading_event("edge-a", reading).event_id == reading_event("edge-b", reading).event_id


def test_heartbeat_and_model_status_round_trip_as_a_batch() -> None:
    heartbeat = heartbeat_event(
        "edge-a",
        HeartbeatData(
            labels={"site": "site-1"},
            counters={"received": 10, "processed": 9, "dead_letters": 1},
            spool_depth=0,
        ),
    )
    status = model_status_event(
        "edge-a", ModelStatusData(model="vib", version="1.0.0", phase="active", rollout_id="r1")
    )
    assert heartbeat.event_id != heartbeat_event("edge-a", heartbeat.data).event_id
    batch = "[" + ",".join(e.to_json() for e in (heartbeat, status)) + "]"
    back = EVENT_LIST_ADAPTER.validate_json(batch)
    assert isinstance(back[0], HeartbeatEvent)
    assert isinstance(back[1], ModelStatusEvent)
    assert back[0].data.counters["dead_letters"] == 1
    assert back[1].data.phase == "active"


@pytest.mark.parametrize(
    "change",
    [
        {"schema": "edgecloud.event/v2"},
        {"type": "unknown"},
        {"event_id": "not-a-uuid"},
        {"node_id": "bad node"},
        {"ts": "yesterday"},
    ],
)
def test_invalid_envelopes_are_refused(change: dict[str, str]) -> None:
    reading = parse_reading(None, PAYLOAD)
    wire = {**json.loads(reading_event("edge-a", reading).to_json()), **change}
    with pytest.raises(ValidationError):
        EVENT_ADAPTER.validate_python(wire)
    if "type" not in change:
        with pytest.raises(ValidationError):
            EnvelopeHeader.model_validate(wire)


def test_envelope_header_keeps_unknown_data_for_forwarding() -> None:
    wire = {
        "schema": SCHEMA_V1,
        "event_id": str(uuid.uuid4()),
        "type": "heartbeat",
        "node_id": "edge-a",
        "ts": "2026-11-22T10:00:00Z",
        "data": {"anything": [1, 2], "counters": {"received": 1}},
        "extra": "kept",
    }
    header = EnvelopeHeader.model_validate(wire)
    assert header.type == "heartbeat"
    assert header.data["anything"] == [1, 2]
    assert header.model_dump(by_alias=True)["extra"] == "kept"


def test_inference_json_text_equals_pydantic_json() -> None:
    import json
    import math

    from edgecloud.core.events import InferenceResult

    cases = [
        InferenceResult(model="m", version="1.0.0"),
        InferenceResult(
            model="sensor-anomaly",
            version="1.1.0",
            outputs={"score": 0.25, "probs": [0.1, 0.9]},
            score=0.25,
            label="normal",
            confidence=0.9,
            anomaly=False,
            escalate=False,
            latency_ms=0.123,
        ),
        InferenceResult(model="m", version="2", label=3, score=1e-7, outputs={"n": -5, "s": "x"}),
        InferenceResult(model="m", version="2", outputs={"big": 10**30}, anomaly=True),
        InferenceResult(model="m", version="2", score=math.inf, confidence=math.nan),
        InferenceResult.model_construct(model="m", version="3", outputs={"é": ["ü", None]}),
    ]
    for r in cases:
        assert json.loads(r.json_text()) == json.loads(r.model_dump_json())
        assert list(json.loads(r.json_text())) == list(json.loads(r.model_dump_json()))
