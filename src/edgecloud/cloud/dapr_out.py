"""What the cloud hands to its Dapr sidecar: transitions on pub/sub, alerts to an output binding.

Dapr is never on the durability path. The database commit comes first; only then is the
message queued here, and one thread sends the queue in order through the sidecar
(``adapters/dapr.py``). A message the sidecar does not take (down, restarting, the queue
full) is counted in ``failed`` (Prometheus ``edgecloud_dapr_out_failures{what}``) and
dropped: the rollout, the node scan and the worker go on. The log says ``dapr <what> failing``
once per outage and ``dapr <what> works again`` when the sidecar is back.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from edgecloud.adapters.dapr import DaprConfig, DaprSidecar
from edgecloud.core.errors import TransportError

log = logging.getLogger(__name__)
QUEUE_LIMIT = 10_000


@dataclass(frozen=True)
class OutMessage:
    target: str  # topic (pub/sub) or operation (binding)
    data: bytes
    metadata: dict[str, str]


class DaprMetrics:
    """Counters of every outbound queue of one process (one registry: the API's or worker's)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "edgecloud_dapr_out_sent", "messages the Dapr sidecar took", ["what"], registry=registry
        )
        self.failed = Counter(
            "edgecloud_dapr_out_failures",
            "messages dropped: the Dapr sidecar did not take them (down, queue full)",
            ["what"],
            registry=registry,
        )


class DaprOut:
    """One ordered queue into the sidecar. ``what``: ``pubsub`` or ``binding`` (metric label,
    log lines); ``component``: the pub/sub or binding component name."""

    def __init__(self, config: DaprConfig, what: str, component: str, metrics: DaprMetrics) -> None:
        self.sidecar = DaprSidecar(config)
        self.what = what
        self.component = component
        self.metrics = metrics
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[OutMessage | None] = queue.Queue(QUEUE_LIMIT)
        self._failing = False
        self._send: Callable[[OutMessage], None] = (
            self._publish if what == "pubsub" else self._invoke
        )
        self._thread = threading.Thread(target=self._run, name=f"dapr-{what}", daemon=True)
        self._thread.start()

    def offer(self, target: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        try:
            self._queue.put_nowait(OutMessage(target, data, metadata or {}))
        except queue.Full:
            self._failed("queue full")

    def _publish(self, m: OutMessage) -> None:
        self.sidecar.publish(self.component, m.target, m.data, metadata=m.metadata)

    def _invoke(self, m: OutMessage) -> None:
        self.sidecar.invoke_binding(self.component, m.target, m.data, m.metadata)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._send(item)
            except TransportError as exc:
                self._failed(str(exc))
                continue
            self.sent += 1
            self.metrics.sent.labels(self.what).inc()
            if self._failing:
                self._failing = False
                log.info("dapr %s works again", self.what, extra={"component": self.component})

    def _failed(self, error: str) -> None:
        self.failed += 1
        self.metrics.failed.labels(self.what).inc()
        if not self._failing:
            self._failing = True
            log.warning(
                "dapr %s failing; messages are dropped (counted in "
                "edgecloud_dapr_out_failures) until the sidecar is back",
                self.what,
                extra={"component": self.component, "error": error[:300]},
            )

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(5.0)
        self.sidecar.close()
