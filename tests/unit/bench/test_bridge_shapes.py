"""``bench bridge --shape``: arrays are what the edge outbox publishes (compact JSON arrays of
up to 200 events, cut by the bridge into the exact events); single is one event a message."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from edgecloud.bench.bridge import EVENTS_PER_MESSAGE, _payload_parts
from edgecloud.cli import app
from edgecloud.core.wire.encode import chunked_arrays
from edgecloud.sync.route import Router

TOPIC = "edgecloud/bench-1/events/reading"


def _messages(per_message: int) -> list[bytes]:
    stamp = b"1796310361022436328"
    return [
        h + stamp + t for h, t in _payload_parts("bench-1", list(range(7)), 60, "", per_message)
    ]


def test_arrays_are_the_outbox_shape_and_forwarded_as_slices() -> None:
    arrays = _messages(EVENTS_PER_MESSAGE)
    singles = _messages(1)
    assert len(singles) == 420 and len(arrays) == 3  # 200 + 200 + 20
    events = [json.loads(a) for a in arrays]
    assert [len(e) for e in events] == [200, 200, 20]
    flat = [ev for batch in events for ev in batch]
    assert [ev["event_id"] for ev in flat] == [json.loads(s)["event_id"] for s in singles]
    assert [ev["data"]["pub_ns"] for ev in events[0][:2]] == [1796310361022436328, 0]
    # the same bytes chunked_arrays (the outbox) would send for these events
    texts = [json.dumps(ev, separators=(",", ":")) for ev in flat]
    assert [t.encode() for t, _ in chunked_arrays(texts, EVENTS_PER_MESSAGE)] == arrays
    records = [r for a in arrays for r in Router().route(TOPIC, a)]
    assert [r.value for r in records] == [t.encode() for t in texts]


def test_an_unknown_shape_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["bench", "bridge", "--shape", "bogus"])
    assert result.exit_code == 2
    assert "arrays or single" in result.output
