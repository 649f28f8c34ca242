"""The cloud worker loop: Kafka batch -> validate -> one DB transaction -> store offsets.

Offsets are stored and committed only after the database commit of their batch, so a crash
(even ``kill -9``) replays at most the batches not yet committed, which the idempotent store
absorbs. A transient database error keeps the batch and retries it with backoff; SIGTERM
finishes the batch in hand, commits it and closes the consumer. Escalation runs beside the
loop in its own thread (asyncio), reading the ``escalations`` queue, so ingest never waits on
the LLM.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from edgecloud.adapters.dapr import DaprConfig
from edgecloud.adapters.kafka_consumer import BatchConsumer, RawMessage, ensure_topics
from edgecloud.cloud.alerts import AlertSink
from edgecloud.cloud.dapr_out import DaprMetrics, DaprOut
from edgecloud.cloud.settings import CloudSettings
from edgecloud.cloud.worker.decode import Decoded, decode
from edgecloud.cloud.worker.metrics import WorkerMetrics
from edgecloud.cloud.worker.store import Store, WriteResult
from edgecloud.core.errors import TransportError
from edgecloud.core.topics import kafka_dead_letter_topic, kafka_topic
from edgecloud.core.trace import log_hop, sampled

log = logging.getLogger(__name__)


def worker_topics(prefix: str) -> list[str]:
    return [
        kafka_topic("reading", prefix),
        kafka_topic("heartbeat", prefix),
        kafka_topic("model_status", prefix),
        kafka_dead_letter_topic(prefix),
    ]


@dataclass
class Totals:
    messages: int = 0
    batches: int = 0
    written: WriteResult = field(default_factory=WriteResult)
    batch_seconds: list[float] = field(default_factory=list)
    first_started: float | None = None  # perf_counter when the first non-empty batch arrived


class Worker:
    """One consumer-group member writing into one database."""

    def __init__(
        self,
        consumer: BatchConsumer,
        store: Store,
        dead_letter_topic: str,
        *,
        batch_size: int = 2000,
        poll_timeout_s: float = 0.5,
        metrics: WorkerMetrics | None = None,
        keep_latencies: bool = False,
        trace_sample: int = 0,
        alerts: AlertSink | None = None,
    ) -> None:
        self.consumer = consumer
        self.store = store
        self.dead_letter_topic = dead_letter_topic
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.metrics = metrics or WorkerMetrics()
        self.totals = Totals()
        self.keep_latencies = keep_latencies
        self.trace_sample = trace_sample
        self.alerts = alerts  # Dapr output binding, after the commit (docs/dapr.md)
        self.stop = threading.Event()

    def run_once(self) -> int:
        """Consume, write and commit one batch (no pipelining); returns the messages handled."""
        msgs = self.consumer.poll_batch(self.batch_size, self.poll_timeout_s)
        if not msgs:
            return 0
        started = time.perf_counter()
        result = self._write_until_done(decode(msgs, self.dead_letter_topic))
        return self._finish(msgs, result, started)

    def _finish(self, msgs: list[RawMessage], result: WriteResult | None, started: float) -> int:
        if result is None:  # stopping while the database was away: the batch will replay
            return 0
        self.consumer.commit(msgs, asynchronous=True)  # only now: the batch is durable
        elapsed = time.perf_counter() - started
        if self.totals.first_started is None:
            self.totals.first_started = started
        self.metrics.messages.inc(len(msgs))
        self.metrics.record(result)
        self.metrics.batch_seconds.observe(elapsed)
        self.totals.messages += len(msgs)
        self.totals.batches += 1
        self.totals.written.add(result)
        if self.keep_latencies:
            self.totals.batch_seconds.append(elapsed)
        return len(msgs)

    def _trace(self, batch: Decoded) -> None:
        """The sampled readings of a batch the database just committed (core/trace.py)."""
        for _raw, ev in batch.readings:
            trace = ev.event_id.hex
            if sampled(trace, self.trace_sample):
                log_hop(log, "cloud.stored", trace, ev.device_id, ev.data.seq, ev.node_id)

    def _write_until_done(self, batch: Decoded) -> WriteResult | None:
        delay = 0.2
        while True:
            try:
                result = self.store.write(batch)
                if self.trace_sample:
                    self._trace(batch)
                if self.alerts is not None:
                    self.alerts.offer(batch)
                return result
            except TransportError as exc:
                self.metrics.db_errors.inc()
                log.warning(
                    "database unavailable, retrying the batch",
                    extra={"error": str(exc).splitlines()[0], "retry_in_s": delay},
                )
                if self.stop.wait(delay):
                    return None
                delay = min(delay * 2, 10.0)

    def run(self, max_messages: int | None = None) -> None:
        """Until ``stop`` (or ``max_messages``): batch N+1 is fetched and validated while batch
        N is written by the writer thread; N's offsets are committed once N is durable, and
        N+1 is written only after that, so offsets never run ahead of the database."""
        log.info("worker consuming", extra={"topics": self.consumer.topics})
        pending: tuple[list[RawMessage], Future[WriteResult | None], float] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="db-writer") as writer:
            while not self.stop.is_set():
                if max_messages is not None and self.totals.messages >= max_messages:
                    break
                msgs = self.consumer.poll_batch(self.batch_size, self.poll_timeout_s)
                started = time.perf_counter()
                batch = decode(msgs, self.dead_letter_topic) if msgs else None
                if pending is not None:
                    done = pending[1].result()
                    self._finish(pending[0], done, pending[2])
                    pending = None
                    if done is None:  # stopped before batch N was durable: N+1 must not pass
                        break
                if batch is not None:
                    pending = (msgs, writer.submit(self._write_until_done, batch), started)
            if pending is not None:
                self._finish(pending[0], pending[1].result(), pending[2])
        log.info(
            "worker stopped",
            extra={"messages": self.totals.messages, "batches": self.totals.batches},
        )


def build_worker(settings: CloudSettings, engine: Engine, metrics: WorkerMetrics) -> Worker:
    topics = worker_topics(settings.kafka_topic_prefix)
    conn = settings.kafka_connection()
    try:
        ensure_topics(conn, topics)
    except TransportError as exc:  # the broker may forbid it; the bridge creates them too
        log.warning("could not ensure Kafka topics", extra={"error": str(exc)})
    consumer = BatchConsumer(conn, settings.kafka_group_id, topics, on_lag=metrics.set_lag)
    status = "pending" if settings.escalation_enabled else "disabled"
    alerts = None
    if settings.dapr_enabled and settings.alert_binding:
        config = DaprConfig(settings.dapr_http_port, settings.dapr_grpc_port)
        out = DaprOut(config, "binding", settings.alert_binding, DaprMetrics(metrics.registry))
        alerts = AlertSink(out, settings.alert_min_score, settings.alert_operation)
    return Worker(
        consumer,
        Store(engine, escalation_status=status),
        kafka_dead_letter_topic(settings.kafka_topic_prefix),
        batch_size=settings.worker_batch_size,
        poll_timeout_s=settings.worker_poll_timeout_s,
        metrics=metrics,
        trace_sample=settings.trace_sample,
        alerts=alerts,
    )
