"""One MQTT message on ``edgecloud/{node}/events/{type}`` -> the Kafka records to forward.

A message carries one event or a JSON array of events; each becomes its own record, sent as it
came (a single event keeps its exact bytes). Topic and key follow CONTRACT section 3. What is
not a valid envelope (or repeats a key in any JSON object: ``duplicate_key``) becomes a
dead-letter record (value: JSON with ``reason``, ``detail``,
``node_id``, ``event_id``, ``source_topic`` and the offending ``payload``; header ``reason``),
so a bad message never blocks the stream.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from edgecloud.core.errors import InvalidEvent
from edgecloud.core.events import SCHEMA_V1, EnvelopeHeader
from edgecloud.core.jsonkeys import (
    DuplicateKeyError,
    duplicate_key,
    maybe_duplicates,
    refuse_duplicates,
)
from edgecloud.core.topics import kafka_dead_letter_topic, kafka_topic, parse_events_topic
from edgecloud.sync.records import OutRecord

MAX_DEAD_PAYLOAD = 64 * 1024
_STRICT_LOADS = json.JSONDecoder(object_pairs_hook=refuse_duplicates).decode
_SCHEMA = SCHEMA_V1.encode()

# The fast path's shapes: a strict subset of what EnvelopeHeader accepts (anything else goes
# through pydantic, which also names the reason of a refusal).
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)")
_TYPES = frozenset(("reading", "heartbeat", "model_status"))


def fast_header(payload: bytes) -> tuple[str, str, str, str | None] | None:
    """(event_id, type, node_id, device_id) of a plainly valid envelope, else None.

    None means "not sure", never "invalid": the caller then validates with ``EnvelopeHeader``.
    Several times cheaper than pydantic for the events the edge agent writes; a test checks that
    whatever this accepts, pydantic accepts with the same values.
    """
    try:  # orjson, like pydantic, wants UTF-8 and refuses NaN / Infinity
        d = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(d) is not dict or d.get("schema") != SCHEMA_V1 or "schema_" in d:
        return None
    eid, etype, node, dev, ts = (
        d.get("event_id"), d.get("type"), d.get("node_id"), d.get("device_id"), d.get("ts")
    )  # fmt: skip
    if (
        type(eid) is not str
        or not _UUID.fullmatch(eid)
        or type(etype) is not str
        or etype not in _TYPES
        or type(node) is not str
        or not _ID.fullmatch(node)
        or (dev is not None and (type(dev) is not str or not _ID.fullmatch(dev)))
        or type(ts) is not str
        or not _TS.fullmatch(ts)
        or type(d.get("data")) is not dict
    ):
        return None
    try:
        datetime.fromisoformat(ts)
    except ValueError:
        return None
    if maybe_duplicates(payload, d):  # a repeated key (or an escaped quote): look closer
        return None
    return eid, etype, node, dev


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
                items = _STRICT_LOADS(body.decode("utf-8"))
            except DuplicateKeyError as exc:
                return [self.dead(topic, payload, "duplicate_key", str(exc), node)]
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
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
                out.append(self._header_event(topic, node, etype, env, raw))
            return out
        fast = fast_header(payload)
        if fast is not None:
            return [self._event(topic, node, etype, *fast, payload)]
        repeated = duplicate_key(payload)
        if repeated is not None:
            detail = f"duplicate key {repeated[:64]!r} in a JSON object"
            return [self.dead(topic, payload, "duplicate_key", detail, node)]
        try:
            env = EnvelopeHeader.model_validate_json(payload)
        except ValidationError as exc:
            return [self.dead(topic, payload, *_reason(exc), node)]
        return [self._header_event(topic, node, etype, env, payload)]

    def _header_event(
        self, topic: str, node: str, etype: str, env: EnvelopeHeader, raw: bytes
    ) -> OutRecord:
        return self._event(
            topic, node, etype, str(env.event_id), env.type, env.node_id, env.device_id, raw
        )

    def _event(
        self,
        topic: str,
        node: str,
        etype: str,
        eid: str,
        body_type: str,
        body_node: str,
        device: str | None,
        raw: bytes,
    ) -> OutRecord:
        if body_node != node:
            detail = f"topic node {node!r} != body node {body_node!r}"
            return self.dead(topic, raw, "node_mismatch", detail, node, eid)
        if body_type != etype:
            detail = f"topic type {etype!r} != body type {body_type!r}"
            return self.dead(topic, raw, "type_mismatch", detail, node, eid)
        if etype == "reading":
            if device is None:
                detail = "reading without device_id"
                return self.dead(topic, raw, "missing_device_id", detail, node, eid)
            key = device.encode()
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
