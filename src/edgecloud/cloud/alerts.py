"""Alerts through a Dapr output binding (``EDGECLOUD_ALERT_BINDING``, docs/dapr.md).

After the worker's database commit of a batch, each reading of it that the edge model flagged
(``inference.anomaly``) with a severity of at least ``EDGECLOUD_ALERT_MIN_SCORE`` goes to
the binding through the worker's sidecar, as one JSON alert (``edgecloud.alert/v1``) with
operation ``EDGECLOUD_ALERT_OPERATION`` (``post`` for ``bindings.http``). The binding is
whatever component of that name daprd loaded (``deploy/dapr/cloud/alerts.yaml``: a webhook),
so a user's own binding needs a component file and the setting, no code.

Severity: the inference's ``score`` (else its ``confidence``, else 1). A batch the worker
replays after a crash alerts again (at least once); ``event_id`` lets a receiver dedupe.
"""

from __future__ import annotations

import json
from typing import Any

from edgecloud.cloud.dapr_out import DaprOut
from edgecloud.cloud.worker.decode import Decoded
from edgecloud.core.events import InferenceResult, ReadingEvent

SCHEMA = "edgecloud.alert/v1"


def severity(inference: InferenceResult) -> float:
    for value in (inference.score, inference.confidence):
        if value is not None:
            return float(value)
    return 1.0


def alert_of(ev: ReadingEvent) -> dict[str, Any]:
    inf = ev.data.inference
    assert inf is not None
    return {
        "schema": SCHEMA, "event_id": str(ev.event_id), "node_id": ev.node_id,
        "device_id": ev.device_id, "seq": ev.data.seq, "ts": ev.ts.isoformat(),
        "severity": severity(inf), "model": inf.model, "version": inf.version,
        "escalate": inf.escalate, "values": ev.data.values,
    }  # fmt: skip


class AlertSink:
    def __init__(self, out: DaprOut, min_score: float, operation: str = "post") -> None:
        self.out = out
        self.min_score = min_score
        self.operation = operation

    def offer(self, batch: Decoded) -> None:
        """The alerts of a batch the database just committed."""
        for _raw, ev in batch.readings:
            inf = ev.data.inference
            if inf is None or not inf.anomaly or severity(inf) < self.min_score:
                continue
            body = json.dumps(alert_of(ev), default=str).encode()
            self.out.offer(self.operation, body, {"Content-Type": "application/json"})

    def stop(self) -> None:
        self.out.stop()
