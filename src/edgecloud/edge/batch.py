"""Classify one micro-batch of MQTT messages: readings to store, dead letters, duplicates.

Policy (docs/edge-agent.md):

- a payload ``parse_reading`` refuses is a dead letter with its reason;
- a replay, i.e. a (device_id, seq) already stored or already earlier in the batch, with the
  same ``ts`` and ``values`` is a duplicate: counted, acknowledged, not stored again, not a
  dead letter (QoS 1 redelivery after a crash looks exactly like this);
- a replay whose body differs is a dead letter ``seq_conflict`` (a device that reset its
  counter, or two devices sharing an id): the stored reading is kept, the new one is not lost;
- a seq lower than the device's last one, never seen before, is stored and counted
  ``out_of_order`` (QoS 1 gives no order across reconnects).

Only readings whose seq is not above the device's last stored seq are looked up in the
database, so the common case costs no query.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

from edgecloud.core.errors import InvalidReading
from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading, bounded_payload, check_ts_window, parse_reading
from edgecloud.core.wire import DeadLetter

Key = tuple[str, int]
# json.dumps with a keyword builds an encoder on every call; the same encoder, made once
_JSON_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _values_json(values: Mapping[str, Any]) -> str:
    """Compact JSON of a reading's values: orjson (~10x faster), json for integers orjson
    cannot write (beyond 64 bits)."""
    try:
        return orjson.dumps(values).decode()
    except TypeError:  # orjson.JSONEncodeError
        return _JSON_ENCODE(values)


Lookup = Callable[[Sequence[Key]], Mapping[Key, tuple[datetime, dict[str, Any]]]]


class Message(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def received_at(self) -> float: ...


@dataclass(slots=True)
class Accepted:
    reading: Reading
    received_at: float
    topic: str
    payload: bytes
    values_json: str = ""
    ts_text: str = ""  # reading.ts.isoformat(): written once, for the COPY row and the event
    inference: InferenceResult | None = None
    inference_json: str | None = None
    tensors_json: str | None = None  # the tensor digests (``edge.tensor_keep``)
    blobs: list[dict[str, Any]] | None = None  # tensor_blobs rows (tensor_store=blob)
    event_tensors_json: str | None = None  # data.tensors of the event (event_tensors)


@dataclass(slots=True)
class Plan:
    accepted: list[Accepted] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    out_of_order: int = 0
    inference_failures: int = 0


def _same_number(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b):
            return False
        return all(_same_number(x, y) for x, y in zip(a, b, strict=True))
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    except (TypeError, ValueError):
        return False


def same_body(ts_a: datetime, values_a: Mapping[str, Any], b: Reading) -> bool:
    """Whether a stored reading and a replay carry the same ``ts`` and ``values``."""
    if ts_a != b.ts or values_a.keys() != b.values.keys():
        return False
    return all(_same_number(values_a[k], b.values[k]) for k in values_a)


def _conflict(a: Accepted, where: str) -> DeadLetter:
    r = a.reading
    return DeadLetter(
        a.topic,
        a.payload,
        "seq_conflict",
        f"seq {r.seq} of {r.device_id} is already {where} with a different ts or values",
        a.received_at,
        r.device_id,
        r.seq,
    )


def _refused(m: Message, exc: InvalidReading) -> DeadLetter:
    """The dead letter of a refused payload; an oversized one keeps only a bounded prefix, with
    its length and sha256 in the detail (a device must not fill the database)."""
    if exc.reason != "too_large":
        return DeadLetter(m.topic, m.payload, exc.reason, exc.detail, m.received_at)
    prefix, summary = bounded_payload(m.payload)
    detail = f"{exc.detail}; kept the first {len(prefix)} of {summary}"
    return DeadLetter(m.topic, prefix, exc.reason, detail, m.received_at)


def classify(
    messages: Sequence[Message],
    last_seqs: Mapping[str, int],
    lookup: Lookup,
    max_bytes: int,
    ts_window: tuple[float, float] | None = None,
) -> Plan:
    """``ts_window`` (seconds before, after the receive time): a ts outside is ``bad_timestamp``."""
    plan = Plan()
    seen: dict[Key, Accepted] = {}
    for m in messages:
        try:
            reading = parse_reading(m.topic, m.payload, max_bytes)
            if ts_window is not None:
                check_ts_window(reading, m.received_at, *ts_window)
        except InvalidReading as exc:
            plan.dead_letters.append(_refused(m, exc))
            continue
        key = (reading.device_id, reading.seq)
        first = seen.get(key)
        if first is None:
            seen[key] = Accepted(reading, m.received_at, m.topic, m.payload)
        elif same_body(first.reading.ts, first.reading.values, reading):
            plan.duplicates += 1
        else:
            plan.dead_letters.append(
                _conflict(Accepted(reading, m.received_at, m.topic, m.payload), "in this batch")
            )
    suspicious = [k for k in seen if k[1] <= last_seqs.get(k[0], -1)]
    stored = lookup(suspicious) if suspicious else {}
    batch_last: dict[str, int] = {}
    accepted = plan.accepted
    for key, acc in seen.items():
        old = stored.get(key) if stored else None
        if old is not None:
            if same_body(old[0], old[1], acc.reading):
                plan.duplicates += 1
            else:
                plan.dead_letters.append(_conflict(acc, "stored"))
            continue
        device, seq = key
        last = last_seqs.get(device, -1)
        in_batch = batch_last.get(device, -1)
        if seq < last or seq < in_batch:
            plan.out_of_order += 1
        else:
            batch_last[device] = seq
        reading = acc.reading
        acc.values_json = _values_json(reading.values)
        acc.ts_text = reading.ts.isoformat()
        accepted.append(acc)
    return plan
