"""Decisions via Dapr (edge/decisions.py) with no sidecar listening: which readings are
offered, each failed publish counted, the outage logged once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from edgecloud.adapters.dapr import DaprConfig
from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading
from edgecloud.dev.process import free_port, wait_until
from edgecloud.edge.batch import Accepted
from edgecloud.edge.decisions import DecisionPublisher, decision_topic
from edgecloud.edge.metrics import Counters


def accepted(seq: int, anomaly: bool, escalate: bool = False) -> Accepted:
    r = Reading(device_id="d1", seq=seq, ts=datetime(2026, 12, 3, tzinfo=UTC), values={"t": 1.0})
    a = Accepted(r, 0.0, "devices/d1/telemetry", b"{}")
    a.inference = InferenceResult(model="m", version="1", anomaly=anomaly, escalate=escalate)
    return a


def test_topics() -> None:
    assert decision_topic("edge-1", "anomaly") == "edgecloud/edge-1/decisions/anomaly"


def test_failed_publishes_are_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    counters = Counters()
    dead = DaprConfig(http_port=free_port(), grpc_port=free_port(), timeout_s=1.0)
    pub = DecisionPublisher(dead, "edge-pubsub", "edge-1", counters)
    batch = [accepted(0, False), accepted(1, True), accepted(2, True, escalate=True)]
    plain = accepted(3, False)
    plain.inference = None  # no model: never a decision
    batch.append(plain)
    with caplog.at_level(logging.WARNING, logger="edgecloud.edge.decisions"):
        pub.start()
        for _ in range(3):
            pub.offer(batch, ["{}"] * len(batch))
        # 3 batches x (anomaly 1, anomaly 2, escalation 2) = 9 publishes, all failing
        wait_until(lambda: counters.dapr_publish_failures == 9, 30.0, "failures counted")
        pub.stop()
    assert counters.dapr_published == 0
    failing = [r for r in caplog.records if "dapr publish failing" in r.getMessage()]
    assert len(failing) == 1
