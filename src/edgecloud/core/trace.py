"""One trace per reading: the trace id is the reading's event id (uuid5 of device_id and seq,
as 32 hex digits, the size of a W3C trace id), so every hop derives the same id without
carrying anything new: the agent from the reading, the bridge from the Kafka ``event_id``
header it writes, the worker from the event.

Each hop logs one JSON line per sampled reading, with ``trace_id``, ``device_id``, ``seq``,
``node_id`` and ``hop`` bound to it. Sampling is by trace id (``trace_sample`` = N keeps the
readings whose id is 0 mod N), so the hops keep the same readings and ``edgecloud trace`` finds
a sampled reading's whole timeline.
"""

from __future__ import annotations

import logging
import uuid

from edgecloud.core.events import reading_event_id

HOPS = ("edge.stored", "bridge.spooled", "bridge.acked", "cloud.stored")


def trace_id(device_id: str, seq: int) -> str:
    return reading_event_id(device_id, seq).hex


def event_trace_id(event_id: uuid.UUID | str | bytes) -> str:
    """The trace id of a reading event id (UUID, its text, or the Kafka header bytes)."""
    if isinstance(event_id, bytes):
        event_id = event_id.decode("ascii", "replace")
    if isinstance(event_id, str):
        event_id = uuid.UUID(event_id)
    return event_id.hex


def sampled(trace: str, every: int) -> bool:
    """Whether the reading of ``trace`` is logged under ``trace_sample = every``."""
    if every <= 0:
        return False
    return every == 1 or int(trace[:8], 16) % every == 0


def log_hop(
    log: logging.Logger,
    hop: str,
    trace: str,
    device_id: str,
    seq: int | None,
    node_id: str | None,
    **extra: object,
) -> None:
    log.info(
        f"reading {hop}",
        extra={
            "trace_id": trace,
            "hop": hop,
            "device_id": device_id,
            "seq": seq,
            "node_id": node_id,
            **extra,
        },
    )
