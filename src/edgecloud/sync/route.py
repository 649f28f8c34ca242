"""One MQTT message on ``edgecloud/{node}/events/{type}`` -> the Kafka records to forward.

A message carries one event or a JSON array of events; each becomes its own record, sent as it
came (a single event keeps its exact bytes). Topic and key follow CONTRACT section 3. What is
not a valid envelope becomes a dead-letter record (value: JSON with ``reason``, ``detail``,
``node_id``, ``event_id``, ``source_topic`` and the offending ``payload``; header ``reason``),
so a bad message never blocks the stream.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from edgecloud.core.errors import InvalidEvent
from edgecloud.core.events import SCHEMA_V1, EnvelopeHeader
from edgecloud.core.topics import kafka_dead_letter_topic, kafka_topic, parse_events_topic
from edgecloud.sync.records import OutRecord

MAX_DEAD_PAYLOAD = 64 * 1024
_SCHEMA = SCHEMA_V1.encode()


class Router:
    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.topics = {t: kafka_topic(t, prefix) for t in ("reading", "heartbeat", "model_status")}
        self.dead_topic = kafka_dead_letter_topic(prefix)

    def route(self, topic: str, payload: bytes) -> list[OutRecord]:
        try:
            node, etype = parse_events_topic(topic)
        except InvalidEvent as exc:
            return [self.dead(topic, payload, exc.reason, exc.detail)]
        body = payload.lstrip()
        if body[:1] == b"[":
            try:
                items = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                return [self.dead(topic, payload, "bad_json", str(exc), node)]
            if not items:
                return [self.dead(topic, payload, "empty_batch", "empty JSON array", node)]
            out = []
            for item in items:
                raw = json.dumps(item, separators=(",", ":")).encode()
                try:
                    env = EnvelopeHeader.model_validate(item)
                except ValidationError as exc:
                    out.append(self.dead(topic, raw, *_reason(exc), node, _id_of(item)))
                    continue
                out.append(self._event(topic, node, etype, env, raw))
            return out
        try:
            env = EnvelopeHeader.model_validate_json(payload)
        except ValidationError as exc:
            return [self.dead(topic, payload, *_reason(exc), node)]
        return [self._event(topic, node, etype, env, payload)]

    def _event(
        self, topic: str, node: str, etype: str, env: EnvelopeHeader, raw: bytes
    ) -> OutRecord:
        eid = str(env.event_id)
        if env.node_id != node:
            detail = f"topic node {node!r} != body node {env.node_id!r}"
            return self.dead(topic, raw, "node_mismatch", detail, node, eid)
        if env.type != etype:
            detail = f"topic type {etype!r} != body type {env.type!r}"
            return self.dead(topic, raw, "type_mismatch", detail, node, eid)
        if etype == "reading":
            if env.device_id is None:
                detail = "reading without device_id"
                return self.dead(topic, raw, "missing_device_id", detail, node, eid)
            key = env.device_id.encode()
        else:
            key = node.encode()
        headers = [("event_id", eid.encode()), ("schema", _SCHEMA), ("node_id", node.encode())]
        return OutRecord(self.topics[etype], key, raw, headers)

    def dead(
        self,
        source_topic: str,
        payload: bytes,
        reason: str,
        detail: str,
        node: str | None = None,
        event_id: str | None = None,
    ) -> OutRecord:
        text = payload[:MAX_DEAD_PAYLOAD].decode("utf-8", errors="replace")
        value = json.dumps(
            {
                "reason": reason,
                "detail": detail[:1000],
                "source": "bridge",
                "source_topic": source_topic,
                "node_id": node,
                "event_id": event_id,
                "payload": text,
            }
        ).encode()
        headers = [("reason", reason.encode()), ("source_topic", source_topic.encode()[:1000])]
        if node:
            headers.append(("node_id", node.encode()))
        if event_id:
            headers.append(("event_id", event_id.encode()))
        return OutRecord(self.dead_topic, (node or "").encode(), value, headers)


def _id_of(item: Any) -> str | None:
    if isinstance(item, dict) and isinstance(item.get("event_id"), str):
        return str(item["event_id"])[:64]
    return None


def _reason(exc: ValidationError) -> tuple[str, str]:
    """A stable reason code from pydantic's first error, and the full text as detail."""
    errors = exc.errors()
    first = errors[0] if errors else {"type": "invalid", "loc": ()}
    loc = ".".join(str(p) for p in first.get("loc", ()))
    kind = str(first.get("type", "invalid"))
    if kind == "json_invalid":
        reason = "bad_json"
    elif kind in ("model_type", "model_attributes_type", "dict_type") and not loc:
        reason = "not_an_object"
    elif kind == "missing":
        reason = f"missing_{loc or 'field'}"
    elif loc == "schema":
        reason = "bad_schema"
    else:
        reason = f"invalid_{loc or kind}"
    return reason[:64], str(exc)[:1000]
