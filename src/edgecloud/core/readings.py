"""Device telemetry: the reading a device publishes on ``devices/{device_id}/telemetry``.

``parse_reading`` is the one entry point for untrusted bytes. It never raises anything but
``InvalidReading``, whose ``reason`` is one of ``REASONS``, so callers can count and keep dead
letters by reason.

The pydantic model ``Reading`` is the reference. Validating every payload through it costs
more than the rest of the agent's work on a reading, so ``parse_reading`` first checks the
parsed JSON by hand (``_fast_reading``) and builds the ``Reading`` with ``model_construct``;
whatever that check does not accept outright goes through ``Reading.model_validate``, which
then says why (reason and detail exactly as before). ``tests/unit/test_core_readings.py``
checks ``parse_reading`` against ``parse_reading_reference`` over good, bad and mutated
payloads.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
)
from pydantic.json_schema import SkipJsonSchema

from edgecloud.core.errors import InvalidReading
from edgecloud.core.jsonkeys import DuplicateKeyError, quotes, refuse_duplicates
from edgecloud.core.tensors import TensorLimits, TensorValue, is_tensor_value, split_tensors

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
_ID_RE = re.compile(ID_PATTERN)
# pydantic's patterns are Rust regexes, where ``$`` is the end of the text (Python's ``$`` also
# matches before a trailing newline): fullmatch is the same test.
_ID_FULL = re.compile(r"[A-Za-z0-9._-]{1,64}").fullmatch
_NAME_FULL = re.compile(r"[A-Za-z0-9_.:-]{1,64}").fullmatch
_FAST_INT = 2**63  # larger ints go through the reference (its float conversion may overflow)
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024
MAX_ARRAY_LEN = 65_536
DEAD_PREFIX_BYTES = 4096  # a too_large dead letter keeps this much of the payload
BROKER_LIMIT_FACTOR = 16  # the broker refuses messages over 16x the agent's limit (min 1 MiB)
BROKER_LIMIT_MIN = 1024 * 1024


def broker_message_limit(max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> int:
    """The broker's ``message_size_limit`` for agents taking ``max_payload_bytes``.

    Derived from the agent's setting, and larger than it on purpose: a payload a little over
    the agent's limit still reaches the agent, which counts it and keeps a ``too_large`` dead
    letter (a bounded prefix, length and digest); only far larger ones (a 10 MiB reading) are
    refused by the broker itself. The agents' event messages are packed under this limit too.
    """
    return max(BROKER_LIMIT_FACTOR * max_payload_bytes, BROKER_LIMIT_MIN)


def bounded_payload(payload: bytes, limit: int = DEAD_PREFIX_BYTES) -> tuple[bytes, str]:
    """(the first ``limit`` bytes, ``"<length> bytes, sha256 <hex>"``) of an oversized payload."""
    digest = hashlib.sha256(payload).hexdigest()
    return payload[:limit], f"{len(payload)} bytes, sha256 {digest}"


REASONS = (
    "too_large",  # payload over the size limit
    "bad_encoding",  # not UTF-8
    "bad_json",  # not parseable JSON
    "not_object",  # JSON, but not an object
    "missing_field",  # device_id, seq, ts or values absent
    "wrong_type",  # a field of the wrong type or shape
    "non_finite",  # NaN or +/-Infinity anywhere
    "bad_device_id",  # device id not matching ID_PATTERN
    "bad_topic",  # topic not devices/{id}/telemetry
    "device_mismatch",  # body device_id differs from the topic's
    "bad_timestamp",  # ts neither RFC 3339 nor epoch seconds, or outside the ts window
    "duplicate_key",  # a JSON object names the same key twice
    "bad_tensor",  # a tensor value that is ragged, or a binary form that does not decode
)

DEFAULT_TS_MAX_PAST_S = 30 * 86400.0  # a device may deliver readings buffered up to 30 days
DEFAULT_TS_MAX_FUTURE_S = 3600.0  # and its clock may run up to an hour ahead


def check_ts_window(reading: Reading, received_at: float, past_s: float, future_s: float) -> None:
    """Refuse (``bad_timestamp``) a ``ts`` outside [received - past_s, received + future_s].

    Not part of ``parse_reading`` (that stays a pure function of the bytes, the same on the fast
    and the reference path): the window depends on when the payload was received. Every ts it
    lets through lies well inside the range the cloud API queries (1970 to 9000).
    """
    ts = reading.ts.timestamp()
    if received_at - past_s <= ts <= received_at + future_s:
        return
    raise InvalidReading(
        "bad_timestamp",
        f"ts {reading.ts.isoformat()} is outside the accepted window of {past_s:g} s before and "
        f"{future_s:g} s after the receive time",
    )


# Finite numbers only: the same type guards readings and the values inside events.
Number = StrictInt | Annotated[StrictFloat, AllowInfNan(False)]
ValueName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Value = Number | Annotated[list[Number], Field(min_length=1, max_length=MAX_ARRAY_LEN)]


class Reading(BaseModel):
    """One device reading. (``device_id``, ``seq``) identifies it end to end.

    ``tensors``: the tensor values (nested arrays, binary form), decoded by ``split_tensors``
    at parse time and kept out of ``values`` (never serialised: events carry their digests).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    device_id: Annotated[str, Field(pattern=ID_PATTERN)]
    seq: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
    ts: datetime
    values: Annotated[dict[ValueName, Value], Field(min_length=1, max_length=1024)]
    tensors: SkipJsonSchema[Annotated[dict[str, TensorValue], Field(exclude=True)]] = Field(
        default_factory=dict
    )


_topic_devices: dict[str, str] = {}  # topics already checked -> their device id


def device_id_from_topic(topic: str) -> str:
    """``devices/{id}/telemetry`` -> ``id``; raises InvalidReading(bad_topic)."""
    known = _topic_devices.get(topic)
    if known is not None:
        return known
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != "devices" or parts[2] != "telemetry":
        raise InvalidReading("bad_topic", f"topic {topic!r} is not devices/{{device_id}}/telemetry")
    if not _ID_RE.match(parts[1]):
        raise InvalidReading("bad_device_id", f"device id {parts[1]!r} in topic is not valid")
    if len(_topic_devices) >= _KNOWN_MAX:
        _topic_devices.clear()
    _topic_devices[topic] = parts[1]
    return parts[1]


def _reject_constant(name: str) -> Any:
    raise InvalidReading("non_finite", f"{name} is not a finite number")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    try:
        return refuse_duplicates(pairs)
    except DuplicateKeyError as exc:
        raise InvalidReading("duplicate_key", str(exc)) from exc


# json.loads with a keyword builds a decoder on every call
_DECODE = json.JSONDecoder(
    parse_constant=_reject_constant, object_pairs_hook=_refuse_duplicates
).decode


def _parse_ts(raw: Any) -> datetime:
    if type(raw) is float and 0.0 <= raw <= 32503680000.0:  # the common case, first (nan fails)
        return datetime.fromtimestamp(raw, tz=UTC)
    if isinstance(raw, bool):
        raise InvalidReading("wrong_type", "ts must be an RFC 3339 string or epoch seconds")
    if isinstance(raw, int | float):
        # An int is compared as is: math.isfinite(10**400) would raise OverflowError.
        if (isinstance(raw, float) and not math.isfinite(raw)) or raw < 0 or raw > 32503680000:
            raise InvalidReading("bad_timestamp", f"epoch seconds {raw!r} out of range")
        return datetime.fromtimestamp(raw, tz=UTC)
    if isinstance(raw, str):
        text = raw.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InvalidReading("bad_timestamp", f"ts {raw!r} is not RFC 3339") from exc
        if parsed.tzinfo is None:
            raise InvalidReading("bad_timestamp", f"ts {raw!r} has no UTC offset")
        return parsed.astimezone(UTC)
    raise InvalidReading("wrong_type", "ts must be an RFC 3339 string or epoch seconds")


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float64 (10**400): no finite float holds it
        return False


def _check_finite(reading: Reading) -> None:
    # json.loads turns an overflowing literal such as 1e400 into inf without a hook call.
    for name, value in reading.values.items():
        if isinstance(value, list):
            if not all(_finite(v) for v in value):
                raise InvalidReading("non_finite", f"values.{name} holds a non-finite number")
        elif not _finite(value):
            raise InvalidReading("non_finite", f"values.{name} is not a finite number")


def _reason_for(exc: ValidationError) -> InvalidReading:
    errors = exc.errors()
    # A union reports one error per member (int, then float): the float's says "not finite".
    finite = [e for e in errors if e["type"] == "finite_number"]
    if finite:
        where = ".".join(str(p) for p in finite[0]["loc"][:-1] if not str(p).startswith("function"))
        return InvalidReading("non_finite", f"{where} is not a finite number")
    err = errors[0]
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "missing":
        return InvalidReading("missing_field", f"field {loc!r} is required")
    if loc == "device_id" and kind == "string_pattern_mismatch":
        return InvalidReading("bad_device_id", "device_id must be 1-64 chars of [A-Za-z0-9._-]")
    return InvalidReading("wrong_type", f"{loc}: {err['msg']}")


_FIELDS_SET = frozenset(("device_id", "seq", "ts", "values", "tensors"))
_NO_TENSORS: dict[str, TensorValue] = {}  # shared by readings without tensors (never mutated)
_KNOWN_MAX = 100_000
_known_ids: set[str] = set()  # device ids and value names already matched: skip the regex
_known_names: set[str] = set()


def _known(text: Any, known: set[str], full: Any) -> bool:
    if type(text) is not str:
        return False
    if text in known:
        return True
    if not full(text):
        return False
    if len(known) >= _KNOWN_MAX:
        known.clear()
    known.add(text)
    return True


# orjson reads an integer literal beyond 64 bits as a float (json: an int); such a float is at
# least 2**64 in size, so the fast path leaves every float that large to the json path.
_BIG_FLOAT = float(2**64)


def _fast_numbers(items: Any) -> bool:
    for v in items:
        t = type(v)
        if t is float:
            # the range also refuses inf and nan (every comparison with nan is false)
            if not -_BIG_FLOAT < v < _BIG_FLOAT:  # inf, nan, or maybe an int beyond 64 bits
                return False
        elif t is not int or not -_FAST_INT < v < _FAST_INT:
            return False
    return True


def _construct(
    device_id: str,
    seq: int,
    ts: datetime,
    values: dict[str, Any],
    tensors: dict[str, TensorValue] = _NO_TENSORS,
) -> Reading:
    """What ``Reading.model_construct`` builds, without its generic per-field work (~4x)."""
    r = Reading.__new__(Reading)
    set_ = object.__setattr__
    set_(
        r,
        "__dict__",
        {"device_id": device_id, "seq": seq, "ts": ts, "values": values, "tensors": tensors},
    )
    set_(r, "__pydantic_fields_set__", set(_FIELDS_SET))
    set_(r, "__pydantic_extra__", None)
    set_(r, "__pydantic_private__", None)
    return r


def _fast_reading(
    body: dict[str, Any], ts: datetime, tensors: dict[str, TensorValue] = _NO_TENSORS
) -> Reading | None:
    """The ``Reading`` of ``body`` when it is plainly valid, else None (the reference decides).

    Accepts only what ``Reading.model_validate`` plus ``_check_finite`` accept, with equal
    field values: a strict int or finite float, or a list of 1..MAX_ARRAY_LEN of those, under
    each of 1..1024 value names.
    """
    device_id: Any = body.get("device_id")
    seq, values = body.get("seq"), body.get("values")
    if (
        type(seq) is not int
        or not 0 <= seq < _FAST_INT
        or type(values) is not dict
        or not 1 <= len(values) <= 1024
        or not _known(device_id, _known_ids, _ID_FULL)
    ):
        return None
    if not _known_names.issuperset(values):  # names seen before: one set operation for all
        for name in values:
            if not _known(name, _known_names, _NAME_FULL):
                return None
    scalars = []
    for v in values.values():
        if type(v) is list:
            if not 1 <= len(v) <= MAX_ARRAY_LEN or not _fast_numbers(v):
                return None
        else:
            scalars.append(v)
    if not _fast_numbers(scalars):
        return None
    return _construct(device_id, seq, ts, values, tensors)


def _take_tensors(body: dict[str, Any], limits: TensorLimits | None) -> dict[str, TensorValue]:
    """Move the tensor values of ``body["values"]`` out (see ``core.tensors``). A reading of
    tensors only keeps an empty ``values``; one with no value at all is refused as before."""
    values = body.get("values")
    if type(values) is not dict or not any(is_tensor_value(v) for v in values.values()):
        return _NO_TENSORS
    if len(values) > 1024:
        return _NO_TENSORS  # the model's max_length refuses it
    rest, tensors = split_tensors(values, limits)
    body["values"] = rest
    return tensors


def parse_reading(
    topic: str | None,
    payload: bytes,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    tensor_limits: TensorLimits | None = None,
) -> Reading:
    """Validate one telemetry payload; ``topic`` None skips the topic check."""
    return _parse(topic, payload, max_bytes, fast=True, tensor_limits=tensor_limits)


def parse_reading_reference(
    topic: str | None,
    payload: bytes,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    tensor_limits: TensorLimits | None = None,
) -> Reading:
    """``parse_reading`` with every payload validated by the pydantic model (tests compare)."""
    return _parse(topic, payload, max_bytes, fast=False, tensor_limits=tensor_limits)


def _orjson_fast(payload: bytes, tensor_limits: TensorLimits | None) -> Reading | None:
    """The reading of a plainly valid payload parsed by orjson (~4x faster than json), or None
    (anything unusual: the json path then decides, with its reason and detail). orjson and json
    read every value the same way except integer literals beyond 64 bits (orjson: a float), which
    ``_fast_numbers`` never accepts; a ``seq`` or ``device_id`` that is a float is refused too."""
    try:
        body = orjson.loads(payload)  # UTF-8 only; refuses NaN, Infinity and a BOM
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict or "ts" not in body:
        return None
    try:
        ts = _parse_ts(body["ts"])
        tensors = _take_tensors(body, tensor_limits)
    except InvalidReading:
        return None
    if tensors:
        return None  # tensor values: the json path decides (duplicate keys, the values check)
    reading = _fast_reading(body, ts)
    if reading is None or payload.count(b'"') != _fast_quotes(body):
        return None  # a repeated key (or an escaped quote): the json path decides
    return reading


def _fast_quotes(body: dict[str, Any]) -> int:
    """``jsonkeys.quotes(body)`` of a body ``_fast_reading`` accepted: its values hold numbers
    only, so just their names count there."""
    n = 2 * len(body) + 2 * len(body["values"]) + 2 + (2 if type(body["ts"]) is str else 0)
    if len(body) > 4:
        n += sum(quotes(v) for k, v in body.items() if k not in _FIELDS_SET)
    return n


def _parse(
    topic: str | None,
    payload: bytes,
    max_bytes: int,
    *,
    fast: bool,
    tensor_limits: TensorLimits | None = None,
) -> Reading:
    if len(payload) > max_bytes:
        raise InvalidReading("too_large", f"payload is {len(payload)} bytes, limit {max_bytes}")
    topic_device = device_id_from_topic(topic) if topic is not None else None
    if fast:
        quick = _orjson_fast(payload, tensor_limits)
        if quick is not None and (topic_device is None or quick.device_id == topic_device):
            return quick
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidReading("bad_encoding", f"payload is not UTF-8: {exc.reason}") from exc
    try:
        # json.loads itself refuses a leading BOM (its message is kept); decode() would not
        body = _DECODE(text) if not text.startswith("\ufeff") else json.loads(text)
    except InvalidReading:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidReading("bad_json", f"payload is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidReading("not_object", f"payload is JSON {type(body).__name__}, not an object")
    if "ts" not in body:
        raise InvalidReading("missing_field", "field 'ts' is required")
    body["ts"] = _parse_ts(body["ts"])
    tensors = _take_tensors(body, tensor_limits)
    only_tensors = bool(tensors) and not body["values"]
    reading = _fast_reading(body, body["ts"], tensors) if fast and not only_tensors else None
    if reading is None:
        # a reading of tensors only is validated with a stand-in value, then built without it
        checked = {**body, "values": {"_": 0}} if only_tensors else body
        try:
            reading = Reading.model_validate({**checked, "tensors": tensors})
        except ValidationError as exc:
            raise _reason_for(exc) from exc
        _check_finite(reading)
        if only_tensors:
            reading = _construct(reading.device_id, reading.seq, reading.ts, {}, tensors)
    if topic_device is not None and reading.device_id != topic_device:
        raise InvalidReading(
            "device_mismatch",
            f"body device_id {reading.device_id!r} differs from topic device {topic_device!r}",
        )
    return reading
