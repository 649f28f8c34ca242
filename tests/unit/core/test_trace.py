"""The trace id of a reading is the same at every hop, and so is the sampling decision."""

from __future__ import annotations

from edgecloud.core.events import reading_event_id
from edgecloud.core.trace import event_trace_id, sampled, trace_id


def test_every_hop_derives_the_same_trace_id() -> None:
    eid = reading_event_id("press-07", 1234)
    trace = trace_id("press-07", 1234)
    assert len(trace) == 32 and int(trace, 16)  # a W3C-sized trace id
    assert trace == eid.hex == event_trace_id(eid) == event_trace_id(str(eid))
    assert event_trace_id(str(eid).encode()) == trace  # the Kafka header's bytes
    assert trace_id("press-07", 1235) != trace and trace_id("press-08", 1234) != trace


def test_sampling_is_by_trace_id() -> None:
    traces = [trace_id(f"d{i % 7}", i) for i in range(4000)]
    assert all(sampled(t, 1) for t in traces)
    assert not any(sampled(t, 0) for t in traces)
    kept = [t for t in traces if sampled(t, 8)]
    assert 350 < len(kept) < 650  # about 1 in 8
    assert all(sampled(event_trace_id(t), 8) for t in kept)  # same answer at another hop
