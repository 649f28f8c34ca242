"""One reading in each of the three shapes the tests feed the pipeline: the parsed ``Reading``
(inference), the device's MQTT payload (the edge agent), and the event envelope on Kafka (the
bridge's output, the cloud worker's input)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from edgecloud.core.events import SCHEMA_V1, reading_event_id
from edgecloud.core.readings import Reading

TS = datetime(2026, 1, 1, tzinfo=UTC)
PRESS = {"temperature": 70.0, "vibration_rms": 0.4, "pressure": 3.0, "current": 12.0}


def reading(device: str, seq: int, ts: datetime = TS, **values: Any) -> Reading:
    return Reading(device_id=device, seq=seq, ts=ts, values=values)


def reading_payload(device: str, seq: int, ts: float | None = None, **values: Any) -> bytes:
    """What a device publishes on ``devices/<id>/telemetry`` (a press's values by default)."""
    body = {"device_id": device, "seq": seq, "ts": time.time() if ts is None else ts,
            "values": values or PRESS}  # fmt: skip
    return json.dumps(body).encode()


def reading_event(
    device: str,
    seq: int,
    node_id: str = "edge-a",
    ts: str = "2026-11-22T10:00:00.123Z",
    **values: Any,
) -> dict[str, Any]:
    """The ``reading`` event envelope (CONTRACT), with the contract's deterministic id."""
    return {
        "schema": SCHEMA_V1,
        "event_id": str(reading_event_id(device, seq)),
        "type": "reading",
        "node_id": node_id,
        "device_id": device,
        "ts": ts,
        "data": {"seq": seq, "values": values or {"t": 1.5}},
    }
