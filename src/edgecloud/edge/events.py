"""Reading events as JSON text, built from pieces already serialised for the database.

The envelope is ``core.events.ReadingEvent``; building one pydantic object per reading costs
more than the rest of the hot path, so this module writes the same JSON from the stored JSON
text of ``values`` and ``inference``. ``tests/unit/edge/test_events.py`` checks that the output
parses as ``EVENT_LIST_ADAPTER`` and equals ``core.events.reading_event`` field for field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime

from edgecloud.core.events import SCHEMA_V1, reading_event_id


def reading_event_json(
    node_id: str,
    device_id: str,
    seq: int,
    ts: datetime,
    values_json: str,
    inference_json: str | None,
) -> str:
    event_id = reading_event_id(device_id, seq)
    return (
        f'{{"schema":"{SCHEMA_V1}","event_id":"{event_id}","type":"reading",'
        f'"node_id":{json.dumps(node_id)},"device_id":{json.dumps(device_id)},'
        f'"ts":"{ts.isoformat()}","data":{{"seq":{seq},"values":{values_json},'
        f'"inference":{inference_json or "null"}}}}}'
    )


def chunked_arrays(events: Sequence[str], per_message: int) -> Iterator[tuple[str, int]]:
    """JSON arrays of at most ``per_message`` events, with their event counts."""
    for start in range(0, len(events), per_message):
        part = events[start : start + per_message]
        yield "[" + ",".join(part) + "]", len(part)
