"""The agent's bulk histogram against prometheus_client's own Histogram."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from edgecloud.edge.metrics import LATENCY_BUCKETS, BulkHistogram


def exposition(registry: CollectorRegistry) -> dict[str, float]:
    samples = {}
    for line in generate_latest(registry).decode().splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_bulk_histogram_exposes_what_histogram_does() -> None:
    rng = random.Random(5)
    # every bucket bound itself (a bound belongs to its own bucket), 0, negatives, beyond +Inf
    values = [*LATENCY_BUCKETS, 0.0, -1.0, 7.0, 1e9] + [rng.expovariate(4) for _ in range(3000)]
    ref_registry, bulk_registry = CollectorRegistry(), CollectorRegistry()
    ref = Histogram("edgecloud_edge_t", "doc", buckets=LATENCY_BUCKETS, registry=ref_registry)
    bulk = BulkHistogram("edgecloud_edge_t", "doc", LATENCY_BUCKETS, bulk_registry)
    for v in values:
        ref.observe(v)
    bulk.observe_many(values[:10])
    bulk.observe_many([])
    bulk.observe_many(values[10:-1])
    bulk.observe(values[-1])
    want, got = exposition(ref_registry), exposition(bulk_registry)
    assert got.keys() == want.keys()
    for name in want:
        if name.endswith("_created"):
            assert got[name] == pytest.approx(want[name], abs=5.0)
        elif name.endswith("_sum"):
            assert got[name] == pytest.approx(want[name], rel=1e-12)
        else:
            assert got[name] == want[name], name
    text = generate_latest(bulk_registry).decode()
    assert "# TYPE edgecloud_edge_t histogram" in text
    assert 'edgecloud_edge_t_bucket{le="+Inf"} 3018.0' in text
