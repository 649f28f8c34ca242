"""The one vocabulary of dead-letter reasons for events (bridge and cloud worker).

A closed set, so that a reason can be a metric label and an alert rule: which field is wrong
is said by the dead letter's ``detail``, never by the reason. Device readings at the edge have
their own (``core.readings.REASONS``); inference failures are ``inference.<reason>``.
"""

from __future__ import annotations

from typing import Final

from pydantic import ValidationError

EVENT_REASONS: Final = (
    "bad_topic",  # not edgecloud/{node_id}/events/{type} (bridge)
    "bad_type",  # an event type that does not exist (topic or body), or none in the body
    "bad_json",  # not UTF-8 JSON
    "duplicate_key",  # a JSON object names the same key twice
    "empty_batch",  # an empty JSON array (bridge)
    "not_an_object",  # JSON, but not an object (a message, or an item of an array)
    "bad_schema",  # "schema" is not edgecloud.event/v1
    "missing_field",  # a required field is absent (a reading without device_id among them)
    "invalid_field",  # a field of the wrong type or shape
    "non_finite",  # NaN or +/-Infinity in a reading (worker)
    "node_mismatch",  # topic node != body node (bridge)
    "type_mismatch",  # topic type != body type (bridge)
    "kafka_too_large",  # Kafka refused the record as too large (bridge)
    "db_rejected",  # the cloud database refused the value (worker)
    "edge_dead_letter",  # a dead-letter record whose own reason could not be read (worker)
)

_TAGS = frozenset(("reading", "heartbeat", "model_status"))


def reason_of(exc: ValidationError) -> str:
    """The reason of pydantic's refusal of an envelope (``EnvelopeHeader`` or ``Event``).

    The first error decides, with the discriminated union's tag dropped from its location:
    ``("reading", "data", "seq")`` and ``("data", "seq")`` are the same field.
    """
    errors = exc.errors()
    if any(e["type"] == "finite_number" for e in errors):
        return "non_finite"  # core's value type refuses NaN / Infinity itself
    if not errors:
        return "invalid_field"
    first = errors[0]
    kind = str(first["type"])
    loc = tuple(first.get("loc", ()))
    if loc and loc[0] in _TAGS:
        loc = loc[1:]
    if kind.startswith("json_"):
        return "bad_json"
    if kind in ("union_tag_invalid", "union_tag_not_found") or loc == ("type",):
        return "bad_type"
    if not loc and kind in ("model_type", "model_attributes_type", "dict_type"):
        return "not_an_object"
    if kind == "missing":
        return "missing_field"
    if loc == ("schema",):
        return "bad_schema"
    return "invalid_field"


def detail_of(exc: ValidationError) -> str:
    """pydantic's text (it names each field) as a dead letter's detail."""
    return str(exc)[:2000]
