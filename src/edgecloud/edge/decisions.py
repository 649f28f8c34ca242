"""Anomaly and escalation decisions out through the agent's Dapr sidecar (pub/sub).

After a batch is committed and acknowledged, each reading the model flagged is published, as
its reading event (``edgecloud.event/v1``, type ``reading``, with the inference), on Dapr
topic ``edgecloud/<node>/decisions/anomaly`` (and ``.../escalation`` when it is escalated) of
the ``edge-pubsub`` component (``pubsub.mqtt3`` on the node's broker, see docs/dapr.md).
daprd wraps it in a CloudEvent 1.0; subscribers read the event from its ``data``.

Dapr is not on the durability path: the readings are stored and forwarded to the cloud by the
outbox whatever happens here. A publish that fails (sidecar down, queue full) is counted in
``dapr_publish_failures`` and dropped; the log says so once per outage, not per reading, and
once more when publishing works again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence

from edgecloud.adapters.dapr import DaprConfig, DaprSidecar
from edgecloud.core.errors import TransportError
from edgecloud.edge.batch import Accepted
from edgecloud.edge.metrics import Counters

log = logging.getLogger(__name__)
QUEUE_LIMIT = 10_000  # decisions waiting for the sidecar; beyond this they count as failed


def decision_topic(node_id: str, kind: str) -> str:
    """Dapr topic of a decision kind (``anomaly`` or ``escalation``)."""
    return f"edgecloud/{node_id}/decisions/{kind}"


class DecisionPublisher:
    def __init__(self, config: DaprConfig, pubsub: str, node_id: str, counters: Counters) -> None:
        self.sidecar = DaprSidecar(config)
        self.pubsub = pubsub
        self.node_id = node_id
        self.counters = counters
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(QUEUE_LIMIT)
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="dapr-decisions", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(self, accepted: Sequence[Accepted], events: Sequence[str]) -> None:
        """Queue the decisions of a committed batch (``events`` in ``accepted``'s order)."""
        for a, text in zip(accepted, events, strict=True):
            inference = a.inference
            if inference is None:
                continue
            kinds = [k for k, on in (("anomaly", inference.anomaly),
                                     ("escalation", inference.escalate)) if on]  # fmt: skip
            for kind in kinds:
                try:
                    self._queue.put_nowait((decision_topic(self.node_id, kind), text.encode()))
                except queue.Full:
                    self._failed("queue full")

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            topic, data = item
            try:
                self.sidecar.publish(self.pubsub, topic, data)
            except TransportError as exc:
                self._failed(str(exc))
                continue
            self.counters.add(dapr_published=1)
            if self._failing:
                self._failing = False
                log.info("dapr publish works again", extra={"pubsub": self.pubsub})

    def _failed(self, error: str) -> None:
        self.counters.add(dapr_publish_failures=1)
        if not self._failing:
            self._failing = True
            log.warning(
                "dapr publish failing; decisions are dropped (counted in "
                "dapr_publish_failures) until the sidecar is back",
                extra={"pubsub": self.pubsub, "error": error[:300]},
            )

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(5.0)
        self.sidecar.close()
