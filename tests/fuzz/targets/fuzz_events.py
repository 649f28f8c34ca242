"""atheris target: the event decoders, the bridge's router and the cloud worker's decoder.

The router turns any MQTT message into records (events or dead letters) without raising; the
worker's batch decoder and its per-message reference give the same events and dead letters.
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports():
    from edgecloud.adapters.kafka_consumer import RawMessage
    from edgecloud.cloud.worker.decode import decode, decode_reference
    from edgecloud.sync.route import Router

ROUTER = Router()
TOPICS = ("edgecloud/edge-a/events/reading", "edgecloud/edge-a/events/heartbeat",
          "edgecloud/edge-a/events/model_status", "edgecloud/x/y")  # fmt: skip
DEAD = "edgecloud.dead-letters"


def _summary(out: object) -> object:
    return (
        [(m.offset, e.event_id) for m, e in out.readings],  # type: ignore[attr-defined]
        [(m.offset, e.event_id) for m, e in out.heartbeats],  # type: ignore[attr-defined]
        [(m.offset, e.event_id) for m, e in out.model_status],  # type: ignore[attr-defined]
        sorted((d.offset, d.reason) for d in out.dead_letters),  # type: ignore[attr-defined]
    )


def test_one_input(data: bytes) -> None:
    topic = TOPICS[data[0] % len(TOPICS)] if data else TOPICS[0]
    payload = data[1:]
    records = ROUTER.route(topic, payload)
    assert records
    for rec in records:
        if rec.topic == ROUTER.dead_topic:
            assert json.loads(rec.value)["reason"]
    # what the bridge forwarded, as the worker reads it (plus the raw bytes themselves)
    values = [r.value for r in records if r.topic != ROUTER.dead_topic] + [payload]
    msgs = [RawMessage("edgecloud.readings", 0, i, None, v) for i, v in enumerate(values)]
    assert _summary(decode(msgs, DEAD)) == _summary(decode_reference(msgs, DEAD))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
