"""One MQTT message on ``edgecloud/{node}/events/{type}`` -> the Kafka records to forward.

A message carries one event or a JSON array of events; each becomes its own record, whose value
is the exact bytes of that event in the message (``core.wire.validate``: checked, not parsed
and written again). Topic and key follow CONTRACT section 3. What is not a valid envelope
becomes a dead-letter record (``core.wire.DeadLetter.record``: JSON with ``reason``,
``detail``, ``node_id``, ``event_id``, ``source_topic`` and the offending ``payload``; header
``reason``; reasons: ``core.wire.EVENT_REASONS``), so a bad message never blocks the stream.
"""

from __future__ import annotations

from edgecloud.core.errors import InvalidEvent
from edgecloud.core.events import SCHEMA_V1
from edgecloud.core.topics import kafka_dead_letter_topic, kafka_topic, parse_events_topic
from edgecloud.core.wire import DeadLetter
from edgecloud.core.wire.validate import check_message
from edgecloud.sync.records import OutRecord

_SCHEMA = SCHEMA_V1.encode()


class Router:
    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.topics = {t: kafka_topic(t, prefix) for t in ("reading", "heartbeat", "model_status")}
        self.dead_topic = kafka_dead_letter_topic(prefix)
        self.check = check_message  # the tests swap in the reference

    def route(self, topic: str, payload: bytes) -> list[OutRecord]:
        try:
            node, etype = parse_events_topic(topic)
        except InvalidEvent as exc:
            return [self.dead(topic, payload, exc.reason, exc.detail)]
        topics, out = self.topics, []
        node_b = node.encode()
        for c in self.check(topic, node, etype, payload):
            if isinstance(c, DeadLetter):
                out.append(self.dead_record(c))
                continue
            dev = c.device_id  # a valid reading has one (validate.against_topic)
            key = dev.encode() if etype == "reading" and dev else node_b
            headers = [("event_id", c.event_id.encode()), ("schema", _SCHEMA), ("node_id", node_b)]
            out.append(OutRecord(topics[etype], key, c.raw, headers))
        return out

    def dead(
        self,
        source_topic: str,
        payload: bytes,
        reason: str,
        detail: str,
        node: str | None = None,
        event_id: str | None = None,
    ) -> OutRecord:
        dl = DeadLetter(source_topic, payload, reason, detail, node_id=node, event_id=event_id)
        return self.dead_record(dl)

    def dead_record(self, dl: DeadLetter) -> OutRecord:
        key = (dl.node_id or "").encode()
        return OutRecord(self.dead_topic, key, dl.record("bridge"), dl.headers())
