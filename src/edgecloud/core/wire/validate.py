"""One MQTT message on ``edgecloud/{node}/events/{type}`` -> its valid events and dead letters.

A message carries one event or a JSON array of events (the edge outbox sends arrays of up to
200). Each valid event is the exact slice of the message that holds it, so the bridge forwards
what the edge wrote without parsing it into objects and writing it again.

Fast path (``check_message``): an array the way ``encode.chunked_arrays`` writes it is cut at
each ``},{"schema":`` into slices; if every slice parses as JSON on its own, the cuts were
exactly between the items (a cut inside a string or a nested value leaves a slice that does not
parse). Each slice is then checked by ``fast_header`` (orjson + patterns), and one it is not sure
of by pydantic's ``EnvelopeHeader`` on the slice. A message that does not cut cleanly, and any
single event, takes the same per-event checks; only then does ``check_message_reference``'s
whole-message parse run. ``check_message_reference`` is the definition (stdlib json with
duplicate keys refused, pydantic on every item): ``tests/unit/core/test_wire_validate.py``
checks that both give the same events (as JSON) and dead letters over a corpus of valid, invalid
and mutated single events and arrays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from edgecloud.core.events import SCHEMA_V1, EnvelopeHeader
from edgecloud.core.jsonkeys import (
    DuplicateKeyError,
    duplicate_key,
    maybe_duplicates,
    refuse_duplicates,
)
from edgecloud.core.wire.dead import DeadLetter
from edgecloud.core.wire.reasons import detail_of, reason_of

_STRICT_LOADS = json.JSONDecoder(object_pairs_hook=refuse_duplicates).decode
_CUT = b'},{"schema":'
_HEAD = b'{"schema":'

# The fast path's shapes: a strict subset of what EnvelopeHeader accepts (anything else goes
# through pydantic, which also names the reason of a refusal).
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}").fullmatch
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)").fullmatch
_TYPES = frozenset(("reading", "heartbeat", "model_status"))

Header = tuple[str, str, str, str | None]  # event_id, type, node_id, device_id


@dataclass(slots=True)  # not frozen: a frozen __init__ costs about 1 us an event here
class Valid:
    """A valid envelope: its exact bytes and header."""

    raw: bytes
    event_id: str
    type: str
    node_id: str
    device_id: str | None


Checked = Valid | DeadLetter


def header_of(d: Any) -> Header | None:
    """(event_id, type, node_id, device_id) of a parsed, plainly valid envelope, else None.

    None means "not sure", never "invalid": the caller then validates with ``EnvelopeHeader``.
    """
    if type(d) is not dict or d.get("schema") != SCHEMA_V1 or "schema_" in d:
        return None
    eid, etype, node, dev, ts = (
        d.get("event_id"), d.get("type"), d.get("node_id"), d.get("device_id"), d.get("ts")
    )  # fmt: skip
    if (
        type(eid) is not str
        or not _UUID(eid)
        or type(etype) is not str
        or etype not in _TYPES
        or type(node) is not str
        or not _ID(node)
        or (dev is not None and (type(dev) is not str or not _ID(dev)))
        or type(ts) is not str
        or not _TS(ts)
        or type(d.get("data")) is not dict
    ):
        return None
    try:
        datetime.fromisoformat(ts)
    except ValueError:
        return None
    return eid, etype, node, dev


def fast_header(payload: bytes) -> Header | None:
    """``header_of`` one event's bytes; None also for bytes that are not plainly JSON.

    Several times cheaper than pydantic for the events the edge agent writes; a test checks that
    whatever this accepts, pydantic accepts with the same values.
    """
    try:  # orjson, like pydantic, wants UTF-8 and refuses NaN / Infinity
        d = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    h = header_of(d)
    if h is None or maybe_duplicates(payload, d):  # a repeated key or an escaped quote
        return None
    return h


def check_message(topic: str, node: str, etype: str, payload: bytes) -> list[Checked]:
    """The events of one message on ``topic`` (whose node and type are given), in order."""
    body = payload if payload[:1] == b"{" else payload.lstrip()
    if body[:1] != b"[":
        h = fast_header(payload)
        if h is not None and h[2] == node and h[1] == etype and (h[3] or etype != "reading"):
            return [Valid(payload, *h)]  # the common case, without the calls below
        return [_one(topic, node, etype, payload, h)]
    slices = _cut(body)
    if slices is None:
        return check_message_reference(topic, node, etype, payload)
    out: list[Checked] = []
    for raw, d in slices:
        h = header_of(d)
        if h is None or maybe_duplicates(raw, d):
            if duplicate_key(raw) is not None:  # as the reference: the whole message is refused
                return check_message_reference(topic, node, etype, payload)
            h = None
        out.append(_one(topic, node, etype, raw, h, _id_of(d)))
    return out


def _cut(body: bytes) -> list[tuple[bytes, Any]] | None:
    """The items of a JSON array as (exact bytes, parsed), if it cuts cleanly; else None."""
    if not (body.startswith(b"[" + _HEAD) and body.endswith(b"}]")):
        return None
    parts = body[1:-2].split(_CUT)
    out = []
    for i, part in enumerate(parts):
        raw = (part if i == 0 else _HEAD + part) + b"}"
        try:
            out.append((raw, orjson.loads(raw)))
        except orjson.JSONDecodeError:
            return None
    return out


def _one(
    topic: str, node: str, etype: str, raw: bytes, h: Header | None, item_id: str | None = None
) -> Checked:
    """``item_id``: what an array's item names as its event id (its dead letter carries it)."""
    if h is None:
        repeated = duplicate_key(raw)
        if repeated is not None:
            detail = f"duplicate key {repeated[:64]!r} in a JSON object"
            return DeadLetter(topic, raw, "duplicate_key", detail, node_id=node)
        try:
            env = EnvelopeHeader.model_validate_json(raw)
        except ValidationError as exc:
            reason, detail = reason_of(exc), detail_of(exc)
            return DeadLetter(topic, raw, reason, detail, node_id=node, event_id=item_id)
        h = (str(env.event_id), env.type, env.node_id, env.device_id)
    return against_topic(topic, node, etype, raw, h)


def against_topic(topic: str, node: str, etype: str, raw: bytes, h: Header) -> Checked:
    """The rules between the topic and the body (CONTRACT section 3)."""
    eid, body_type, body_node, device = h
    if body_node == node and body_type == etype and (device is not None or etype != "reading"):
        return Valid(raw, eid, body_type, body_node, device)  # the common case first
    if body_node != node:
        detail = f"topic node {node!r} != body node {body_node!r}"
        return DeadLetter(topic, raw, "node_mismatch", detail, node_id=node, event_id=eid)
    if body_type != etype:
        detail = f"topic type {etype!r} != body type {body_type!r}"
        return DeadLetter(topic, raw, "type_mismatch", detail, node_id=node, event_id=eid)
    if etype == "reading" and device is None:
        detail = "device_id: a reading needs one"
        return DeadLetter(topic, raw, "missing_field", detail, node_id=node, event_id=eid)
    return Valid(raw, eid, body_type, body_node, device)


def check_message_reference(topic: str, node: str, etype: str, payload: bytes) -> list[Checked]:
    """``check_message`` by definition: the whole message parsed by stdlib json (duplicate
    keys refused), each item validated by pydantic (an item's bytes: compact JSON of it)."""
    body = payload.lstrip()
    if body[:1] != b"[":
        return [_one(topic, node, etype, payload, None)]
    try:
        items = _STRICT_LOADS(body.decode("utf-8"))
    except DuplicateKeyError as exc:
        return [DeadLetter(topic, payload, "duplicate_key", str(exc), node_id=node)]
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return [DeadLetter(topic, payload, "bad_json", str(exc), node_id=node)]
    if not items:
        return [DeadLetter(topic, payload, "empty_batch", "empty JSON array", node_id=node)]
    out: list[Checked] = []
    for item in items:
        raw = _DUMPS(item).encode()
        try:
            env = EnvelopeHeader.model_validate(item)
        except ValidationError as exc:
            dl = DeadLetter(topic, raw, reason_of(exc), detail_of(exc), node_id=node)
            dl.event_id = _id_of(item)
            out.append(dl)
            continue
        h = (str(env.event_id), env.type, env.node_id, env.device_id)
        out.append(against_topic(topic, node, etype, raw, h))
    return out


_DUMPS: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":")).encode


def _id_of(item: Any) -> str | None:
    if isinstance(item, dict) and isinstance(item.get("event_id"), str):
        return str(item["event_id"])[:64]
    return None
