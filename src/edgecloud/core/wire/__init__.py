"""The event wire contract (CONTRACT section 3), in one place: encode, validate, decode.

- ``encode``: reading events as JSON text, and the JSON arrays the edge outbox publishes;
- ``validate``: one MQTT message (an event or an array of events) -> the slices of it that
  are valid envelopes, forwarded as they came, and the dead letters (``check_message``), with
  its fast path and the reference it must agree with (``check_message_reference``);
- ``decode``: full event validation (typed ``data``, finite numbers) for the cloud worker;
- ``dead``: the one dead-letter shape and the 64 KiB payload bound;
- ``reasons``: the one dead-letter reason vocabulary, and pydantic errors mapped onto it.

Pure code: no I/O, no protocol SDK.
"""

from edgecloud.core.wire.dead import MAX_PAYLOAD, DeadLetter, clean_text, payload_text
from edgecloud.core.wire.reasons import EVENT_REASONS, reason_of

__all__ = [
    "EVENT_REASONS",
    "MAX_PAYLOAD",
    "DeadLetter",
    "clean_text",
    "payload_text",
    "reason_of",
]
