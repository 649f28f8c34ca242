"""Reading events as JSON text, built from pieces already serialised for the database, and
the JSON arrays the edge outbox publishes (one MQTT message, up to 200 events).

The envelope is ``core.events.ReadingEvent``; building one pydantic object per reading costs
more than the rest of the hot path, so this module writes the same JSON from the stored JSON
text of ``values`` and ``inference``. ``tests/unit/core/test_wire_encode.py`` checks that the output
parses as ``EVENT_LIST_ADAPTER`` and equals ``core.events.reading_event`` field for field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime

from edgecloud.core.events import READING_NAMESPACE, SCHEMA_V1

_NS = READING_NAMESPACE.bytes
_sha1 = hashlib.sha1
# hex digit -> RFC 4122 variant (10xx), as uuid.UUID sets it (a dict: int(digit, 16) costs more)
_VARIANT = dict(zip("0123456789abcdef", "89ab89ab89ab89ab", strict=True))


def event_id_text(device_id: str, seq: int) -> str:
    """``str(core.events.reading_event_id(device_id, seq))``, without the UUID object."""
    h = _sha1(_NS + f"{device_id}\x1f{seq}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def reading_event_json(
    node_id: str,
    device_id: str,
    seq: int,
    ts: datetime,
    values_json: str,
    inference_json: str | None,
) -> str:
    return reading_event_text(node_id, device_id, seq, ts.isoformat(), values_json, inference_json)


def reading_event_text(
    node_id: str,
    device_id: str,
    seq: int,
    ts_text: str,
    values_json: str,
    inference_json: str | None,
    tensors_json: str | None = None,
) -> str:
    """``reading_event_json`` with ``ts`` already written (``ts.isoformat()``); ``tensors_json``
    (``data.tensors``, EDGECLOUD_EVENT_TENSORS) is left out when None."""
    # device_id and node_id match core.readings.ID_PATTERN: no JSON escaping needed
    tensors = "" if tensors_json is None else f',"tensors":{tensors_json}'
    return (
        f'{{"schema":"{SCHEMA_V1}","event_id":"{event_id_text(device_id, seq)}",'
        f'"type":"reading","node_id":"{node_id}","device_id":"{device_id}",'
        f'"ts":"{ts_text}","data":{{"seq":{seq},"values":{values_json},'
        f'"inference":{inference_json or "null"}{tensors}}}}}'
    )


def chunked_arrays(
    events: Sequence[str], per_message: int, max_chars: int | None = None
) -> Iterator[tuple[str, int]]:
    """JSON arrays of at most ``per_message`` events, with their event counts; with
    ``max_chars``, an array also stays under that many characters (the broker's message limit;
    the events are ASCII JSON) unless a single event is larger on its own."""
    for start in range(0, len(events), per_message):
        part = events[start : start + per_message]
        if max_chars is None or sum(map(len, part)) + len(part) + 1 <= max_chars:
            yield "[" + ",".join(part) + "]", len(part)
            continue
        chunk: list[str] = []
        size = 1
        for ev in part:
            if chunk and size + len(ev) + 1 > max_chars:
                yield "[" + ",".join(chunk) + "]", len(chunk)
                chunk, size = [], 1
            chunk.append(ev)
            size += len(ev) + 1
        yield "[" + ",".join(chunk) + "]", len(chunk)
