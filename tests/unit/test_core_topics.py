"""Topic names of the contract."""

from __future__ import annotations

import pytest

from edgecloud.core.errors import InvalidEvent
from edgecloud.core.topics import (
    KAFKA_TOPICS,
    events_topic,
    kafka_dead_letter_topic,
    kafka_topic,
    parse_events_topic,
    telemetry_topic,
)


def test_mqtt_topics() -> None:
    assert telemetry_topic("press-07") == "devices/press-07/telemetry"
    assert events_topic("edge-a", "reading") == "edgecloud/edge-a/events/reading"
    assert parse_events_topic("edgecloud/edge-a/events/model_status") == ("edge-a", "model_status")


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("edgecloud/edge-a/events", "bad_topic"),
        ("edgecloud/edge-a/status/reading", "bad_topic"),
        ("other/edge-a/events/reading", "bad_topic"),
        ("edgecloud/edge-a/events/reading/x", "bad_topic"),
        ("edgecloud/edge-a/events/gossip", "bad_type"),
    ],
)
def test_bad_events_topics(topic: str, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_events_topic(topic)
    assert info.value.reason == reason


def test_kafka_topics_of_the_contract_with_prefix() -> None:
    assert KAFKA_TOPICS == {
        "reading": "edgecloud.readings",
        "heartbeat": "edgecloud.heartbeats",
        "model_status": "edgecloud.model-status",
    }
    assert kafka_topic("reading") == "edgecloud.readings"
    assert kafka_topic("model_status", "t1a2b3c.") == "t1a2b3c.edgecloud.model-status"
    assert kafka_dead_letter_topic() == "edgecloud.dead-letters"
    assert kafka_dead_letter_topic("x.") == "x.edgecloud.dead-letters"
