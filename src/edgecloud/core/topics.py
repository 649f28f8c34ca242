"""Topic names of the contract (MQTT on the edge broker, Kafka in the cloud)."""

from __future__ import annotations

import zlib

from edgecloud.core.errors import InvalidEvent
from edgecloud.core.events import EVENT_TYPES

TELEMETRY_SUBSCRIPTION = "devices/+/telemetry"
EVENTS_SUBSCRIPTION = "edgecloud/+/events/#"

KAFKA_TOPICS = {
    "reading": "edgecloud.readings",
    "heartbeat": "edgecloud.heartbeats",
    "model_status": "edgecloud.model-status",
}
KAFKA_DEAD_LETTERS = "edgecloud.dead-letters"


def telemetry_topic(device_id: str) -> str:
    return f"devices/{device_id}/telemetry"


def telemetry_device(topic: str) -> str | None:
    """``devices/{device_id}/telemetry`` -> device_id (None for any other topic)."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == "devices" and parts[2] == "telemetry":
        return parts[1]
    return None


def device_shard(device_id: str, shards: int) -> int:
    """The shard (1..shards) that owns a device: crc32 of its id, stable everywhere.

    Used where several edge nodes share one broker (the local stack): each node takes only
    the devices of its shard (``EDGECLOUD_DEVICE_SHARD=i/N``), as if it had its own broker.
    """
    return zlib.crc32(device_id.encode()) % shards + 1


def events_topic(node_id: str, event_type: str) -> str:
    return f"edgecloud/{node_id}/events/{event_type}"


def parse_events_topic(topic: str) -> tuple[str, str]:
    """``edgecloud/{node_id}/events/{type}`` -> (node_id, type)."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "edgecloud" or parts[2] != "events":
        raise InvalidEvent(
            "bad_topic", f"topic {topic!r} is not edgecloud/{{node}}/events/{{type}}"
        )
    if parts[3] not in EVENT_TYPES:
        raise InvalidEvent("bad_type", f"unknown event type {parts[3]!r} in topic")
    return parts[1], parts[3]


def kafka_topic(event_type: str, prefix: str = "") -> str:
    """Kafka topic for an event type; ``prefix`` isolates tests and tenants."""
    return prefix + KAFKA_TOPICS[event_type]


def kafka_dead_letter_topic(prefix: str = "") -> str:
    return prefix + KAFKA_DEAD_LETTERS
