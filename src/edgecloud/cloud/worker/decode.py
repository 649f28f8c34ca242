"""Kafka messages -> validated events or dead letters (pure; no I/O).

The validation is ``core.wire.decode``'s: messages of one poll are validated together
(``validate_joined``); if that fails, every message is validated on its own (``validate_one``)
so that each invalid one gets its own reason and the others go through. ``decode_reference``
validates every message on its own (the definition); the tests check that both give the same
events and dead letters over a corpus of valid, invalid and mutated messages
(``tests/unit/cloud/test_worker_decode_reference.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from edgecloud.adapters.kafka_consumer import RawMessage
from edgecloud.core.events import Event, HeartbeatEvent, ModelStatusEvent, ReadingEvent
from edgecloud.core.wire import DeadLetter
from edgecloud.core.wire.decode import (
    dead_record,
    ids_of,
    non_finite,
    validate_joined,
    validate_one,
)


@dataclass(slots=True)
class Decoded:
    readings: list[tuple[RawMessage, ReadingEvent]] = field(default_factory=list)
    heartbeats: list[tuple[RawMessage, HeartbeatEvent]] = field(default_factory=list)
    model_status: list[tuple[RawMessage, ModelStatusEvent]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.readings)
            + len(self.heartbeats)
            + len(self.model_status)
            + len(self.dead_letters)
        )


def dead_letter(
    msg: RawMessage,
    reason: str,
    detail: str,
    node_id: str | None = None,
    event_id: str | None = None,
) -> DeadLetter:
    return DeadLetter(
        msg.topic,
        msg.value,
        reason,
        detail,
        node_id=node_id,
        event_id=event_id,
        partition=msg.partition,
        offset=msg.offset,
    )


def _accept(out: Decoded, msg: RawMessage, ev: Event) -> None:
    problem = non_finite(ev)
    if problem is not None:
        out.dead_letters.append(
            dead_letter(msg, "non_finite", problem, node_id=ev.node_id, event_id=str(ev.event_id))
        )
    elif isinstance(ev, ReadingEvent):
        out.readings.append((msg, ev))
    elif isinstance(ev, HeartbeatEvent):
        out.heartbeats.append((msg, ev))
    else:
        out.model_status.append((msg, ev))


def edge_dead_letter(msg: RawMessage) -> DeadLetter:
    """A message of the dead-letter topic (the bridge's or an agent's): kept as it came."""
    reason, detail, node_id, event_id = dead_record(msg.value)
    return dead_letter(msg, reason, detail, node_id=node_id, event_id=event_id)


def decode(msgs: Sequence[RawMessage], dead_letter_topic: str) -> Decoded:
    out = Decoded()
    events = [m for m in msgs if m.topic != dead_letter_topic]
    if len(events) != len(msgs):
        out.dead_letters.extend(edge_dead_letter(m) for m in msgs if m.topic == dead_letter_topic)
    if not events:
        return out
    parsed = validate_joined([m.value for m in events])
    if parsed is None:
        _decode_each(out, events)
        return out
    readings = out.readings
    for msg, ev in zip(events, parsed, strict=True):
        if isinstance(ev, ReadingEvent) and non_finite(ev) is None:
            readings.append((msg, ev))
        else:
            _accept(out, msg, ev)
    return out


def decode_reference(msgs: Sequence[RawMessage], dead_letter_topic: str) -> Decoded:
    """``decode`` by definition: every message validated on its own (tests compare)."""
    out = Decoded()
    for m in msgs:
        if m.topic == dead_letter_topic:
            out.dead_letters.append(edge_dead_letter(m))
        else:
            _decode_each(out, [m])
    return out


def _decode_each(out: Decoded, events: Sequence[RawMessage]) -> None:
    for msg in events:
        ev = validate_one(msg.value)
        if isinstance(ev, tuple):
            out.dead_letters.append(dead_letter(msg, *ev, *ids_of(msg.value)))
        else:
            _accept(out, msg, ev)
