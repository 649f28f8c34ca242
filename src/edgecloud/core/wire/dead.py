"""The dead-letter shape, written once: what the edge agent keeps, the bridge forwards to
``edgecloud.dead-letters`` and the cloud worker stores.

A dead letter is the offending payload as it came plus its reason (``reasons``), a detail for
people and the ids that trace it. The cloud side (the bridge's record, the worker's row) keeps
at most ``MAX_PAYLOAD`` bytes of the payload (``payload_text``); the edge keeps it whole, except
an oversized one, of which ``core.readings.bounded_payload`` keeps a prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

MAX_PAYLOAD = 64 * 1024  # bytes of the payload a dead letter keeps beyond the edge
MAX_DETAIL = 2000
MAX_REASON = 64


@dataclass(slots=True)
class DeadLetter:
    topic: str  # where it came from: an MQTT topic (edge, bridge) or a Kafka topic (worker)
    payload: bytes
    reason: str
    detail: str
    received_at: float | None = None  # epoch seconds (edge)
    device_id: str | None = None
    seq: int | None = None
    node_id: str | None = None
    event_id: str | None = None
    partition: int | None = None  # Kafka position (worker)
    offset: int | None = None

    def record(self, source: str) -> bytes:
        """The value of a record on the dead-letter topic (bridge, agent): JSON with
        ``reason``, ``detail``, ``source``, ``source_topic``, ``node_id``, ``event_id`` and the
        ``payload`` text (at most ``MAX_PAYLOAD`` bytes of it)."""
        return orjson.dumps(
            {
                "reason": self.reason[:MAX_REASON],
                "detail": clean_text(self.detail[:MAX_DETAIL]),
                "source": source,
                "source_topic": clean_text(self.topic),
                "node_id": _clean(self.node_id),
                "event_id": _clean(self.event_id),
                "payload": payload_text(self.payload),
            }
        )

    def cloud_row(self) -> dict[str, Any]:
        """The cloud ``dead_letters`` row's values (text Postgres stores, sizes bounded)."""
        return {
            "topic": clean_text(self.topic)[:255],
            "partition": self.partition,
            "offset": self.offset,
            "reason": clean_text(self.reason)[:MAX_REASON],
            "detail": clean_text(self.detail[:MAX_DETAIL]),
            "payload": payload_text(self.payload),
            "node_id": None if self.node_id is None else clean_text(self.node_id)[:255],
            "event_id": None if self.event_id is None else clean_text(self.event_id)[:64],
        }

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers of that record: ``reason``, ``source_topic`` and the ids it has."""
        topic = self.topic.encode("utf-8", "replace")[:1000]
        out = [("reason", self.reason.encode()), ("source_topic", topic)]
        if self.node_id:
            out.append(("node_id", self.node_id.encode("utf-8", "replace")))
        if self.event_id:
            out.append(("event_id", self.event_id.encode("utf-8", "replace")))
        return out


def clean_text(text: str) -> str:
    """Text any database stores: no NUL, no lone surrogates (both refused by Postgres)."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def payload_text(value: bytes) -> str:
    """At most ``MAX_PAYLOAD`` bytes of ``value`` as text (invalid UTF-8 and NUL replaced)."""
    return value[:MAX_PAYLOAD].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _clean(text: str | None) -> str | None:
    return None if text is None else clean_text(text)
