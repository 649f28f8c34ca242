"""MQTT message -> Kafka records: topics, keys, headers, batches and dead-letter reasons."""

from __future__ import annotations

import json
import uuid

import pytest

from edgecloud.core.wire import EVENT_REASONS
from edgecloud.sync.route import Router

NODE = "edge-a"


def event(etype: str = "reading", **over: object) -> dict[str, object]:
    ev: dict[str, object] = {
        "schema": "edgecloud.event/v1",
        "event_id": str(uuid.uuid4()),
        "type": etype,
        "node_id": NODE,
        "device_id": "press-07" if etype == "reading" else None,
        "ts": "2026-11-22T10:00:00.123Z",
        "data": {"seq": 1, "values": {"t": 1.0}},
    }
    ev.update(over)
    return ev


def topic(etype: str = "reading", node: str = NODE) -> str:
    return f"edgecloud/{node}/events/{etype}"


def test_single_reading_keeps_bytes_and_keys_by_device() -> None:
    ev = event()
    raw = json.dumps(ev).encode()
    [rec] = Router("p.").route(topic(), raw)
    assert rec.topic == "p.edgecloud.readings"
    assert rec.key == b"press-07"
    assert rec.value == raw
    assert dict(rec.headers) == {
        "event_id": str(ev["event_id"]).encode(),
        "schema": b"edgecloud.event/v1",
        "node_id": NODE.encode(),
    }


@pytest.mark.parametrize(
    ("etype", "kafka"),
    [("heartbeat", "edgecloud.heartbeats"), ("model_status", "edgecloud.model-status")],
)
def test_other_types_key_by_node(etype: str, kafka: str) -> None:
    [rec] = Router().route(topic(etype), json.dumps(event(etype)).encode())
    assert (rec.topic, rec.key) == (kafka, NODE.encode())


def test_array_is_split_and_bad_items_dead_lettered() -> None:
    good = [event() for _ in range(3)]
    bad = event(schema="edgecloud.event/v2")
    recs = Router().route(topic(), json.dumps([good[0], bad, good[1], good[2]]).encode())
    assert [r.topic for r in recs] == [
        "edgecloud.readings",
        "edgecloud.dead-letters",
        "edgecloud.readings",
        "edgecloud.readings",
    ]
    assert [dict(r.headers)["event_id"].decode() for r in recs] == [
        str(e["event_id"]) for e in (good[0], bad, good[1], good[2])
    ]
    assert json.loads(recs[2].value) == good[1]
    assert dict(recs[1].headers)["reason"] == b"bad_schema"


@pytest.mark.parametrize(
    ("mqtt_topic", "payload", "reason", "names"),
    [
        (topic(), b"{not json", "bad_json", ""),
        (topic(), b"[1, 2", "bad_json", ""),
        (topic(), b"[]", "empty_batch", ""),
        (topic(), b"42", "not_an_object", ""),
        (
            topic(),
            json.dumps({k: v for k, v in event().items() if k != "ts"}),
            "missing_field",
            "ts",
        ),
        (topic(), json.dumps(event(event_id="nope")), "invalid_field", "event_id"),
        (topic(), json.dumps(event(type="gossip")), "bad_type", "type"),
        (topic(node="edge-b"), json.dumps(event()), "node_mismatch", "edge-b"),
        (topic("heartbeat"), json.dumps(event()), "type_mismatch", "reading"),
        (topic(), json.dumps(event(device_id=None)), "missing_field", "device_id"),
        ("edgecloud/edge-a/events/bogus", json.dumps(event()), "bad_type", "bogus"),
        ("edgecloud/edge-a/other", b"{}", "bad_topic", ""),
    ],
)
def test_dead_letter_reasons(
    mqtt_topic: str, payload: str | bytes, reason: str, names: str
) -> None:
    """One closed vocabulary (``core.wire.EVENT_REASONS``); the detail names the field."""
    raw = payload.encode() if isinstance(payload, str) else payload
    [rec] = Router("x.").route(mqtt_topic, raw)
    assert rec.topic == "x.edgecloud.dead-letters"
    assert dict(rec.headers)["reason"] == reason.encode()
    body = json.loads(rec.value)
    assert body["reason"] == reason
    assert reason in EVENT_REASONS
    assert names in body["detail"]
    assert body["source_topic"] == mqtt_topic
    assert body["payload"] == raw.decode()


def test_outbox_arrays_are_forwarded_as_the_exact_slices() -> None:
    """What the edge outbox publishes (compact arrays) goes out byte for byte, item by item."""
    items = [
        json.dumps(event(), separators=(",", ":")),
        json.dumps(event(schema="edgecloud.event/v2"), separators=(",", ":")),
        # the cut inside a string (its quotes are escaped: never the separator itself)
        json.dumps(event(note='x},{"schema":y'), separators=(",", ":")),
        json.dumps(event(), separators=(",", ":")),
    ]
    payload = ("[" + ",".join(items) + "]").encode()
    recs = Router().route(topic(), payload)
    assert [r.topic for r in recs] == [
        "edgecloud.readings",
        "edgecloud.dead-letters",
        "edgecloud.readings",
        "edgecloud.readings",
    ]
    assert [recs[i].value for i in (0, 2, 3)] == [items[i].encode() for i in (0, 2, 3)]
    assert json.loads(json.loads(recs[1].value)["payload"]) == json.loads(items[1])
    assert dict(recs[1].headers)["event_id"] == json.loads(items[1])["event_id"].encode()


def _dead_reason(rec: object) -> str:
    return str(json.loads(rec.value)["reason"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "raw",
    [
        # the fast path's shape, node_id twice: the last one would win
        json.dumps(event())[:-1].encode() + b', "node_id": "edge-b"}',
        # inside data, where the fast path does not look
        json.dumps(event()).replace('"seq": 1', '"seq": 1, "seq": 2').encode(),
        # off the fast path (an escaped quote), the repeat in the envelope
        json.dumps(event(extra='a"b'))[:-1].encode() + b', "type": "reading"}',
    ],
)
def test_duplicate_keys_in_an_event_are_a_dead_letter(raw: bytes) -> None:
    router = Router()
    [rec] = router.route(topic(), raw)
    assert rec.topic == router.dead_topic
    assert _dead_reason(rec) == "duplicate_key"
    assert json.loads(rec.value)["payload"] == raw.decode()


def test_duplicate_keys_in_a_batch_refuse_the_message() -> None:
    good = json.dumps(event())
    bad = json.dumps(event()).replace('"t": 1.0', '"t": 1.0, "t": 2.0')
    router = Router()
    [rec] = router.route(topic(), f"[{good},{bad}]".encode())
    assert (rec.topic, _dead_reason(rec)) == (router.dead_topic, "duplicate_key")
    # an escaped quote is no repeat: both go through
    fine = json.dumps(event(note='say "hi"'))
    assert [r.topic for r in router.route(topic(), f"[{good},{fine}]".encode())] == [
        "edgecloud.readings"
    ] * 2


def test_a_false_cut_inside_an_item_still_gives_its_events() -> None:
    """A nested list of objects whose second one starts with "schema": the cut there leaves
    slices that do not parse, so the message is checked whole (the reference path)."""
    nested = event(data={"seq": 2, "values": {"t": 2.0}, "l": [{"a": 1}, {"schema": 2}]})
    items = [event(), nested, event()]
    payload = json.dumps(items, separators=(",", ":")).encode()
    assert payload.count(b'},{"schema":') == 3
    recs = Router().route(topic(), payload)
    assert [r.topic for r in recs] == ["edgecloud.readings"] * 3
    assert [json.loads(r.value) for r in recs] == items
