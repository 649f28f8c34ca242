"""Prometheus counters of the worker, on their own registry (several workers per process in
tests); served on ``EDGECLOUD_WORKER_METRICS_PORT`` when set."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from edgecloud.cloud.worker.store import WriteResult


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("edgecloud_worker_messages", "Kafka messages consumed", registry=r)
        self.events = Counter(
            "edgecloud_worker_events",
            "events written, by type and outcome (new|duplicate)",
            ["type", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "edgecloud_worker_dead_letters", "messages kept as dead letters", registry=r
        )
        self.batches = Counter("edgecloud_worker_batches", "batches committed", registry=r)
        self.db_errors = Counter(
            "edgecloud_worker_db_errors", "transient database errors (batch retried)", registry=r
        )
        self.batch_seconds = Histogram(
            "edgecloud_worker_batch_seconds",
            "decode + write + offset commit of one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.escalations = Counter(
            "edgecloud_worker_escalations", "escalation outcomes", ["status"], registry=r
        )
        self.escalation_tokens = Counter(
            "edgecloud_worker_escalation_tokens", "LLM tokens used by escalation", registry=r
        )
        self.consumer_lag = Gauge(
            "edgecloud_worker_consumer_lag",
            "messages of a topic not yet consumed by this worker's group (librdkafka stats)",
            ["topic"],
            registry=r,
        )
        self.escalation_tokens_used = Gauge(
            "edgecloud_worker_escalation_tokens_used_period",
            "LLM tokens spent in the current budget period",
            registry=r,
        )
        self.escalation_token_budget = Gauge(
            "edgecloud_worker_escalation_token_budget",
            "LLM token budget of one period",
            registry=r,
        )
        self.breaker_open = Gauge(
            "edgecloud_worker_escalation_breaker_open", "1 while the circuit is open", registry=r
        )

    def record(self, res: WriteResult) -> None:
        self.batches.inc()
        for kind, new, total_dup in (
            ("reading", res.readings_new, res.readings_duplicate),
            ("heartbeat", res.heartbeats_new, 0),
            ("model_status", res.model_status_new, 0),
        ):
            if new:
                self.events.labels(kind, "new").inc(new)
            if total_dup:
                self.events.labels(kind, "duplicate").inc(total_dup)
        if res.dead_letters:
            self.dead_letters.inc(res.dead_letters)

    def set_lag(self, lag: dict[str, int]) -> None:
        for topic, value in lag.items():
            self.consumer_lag.labels(topic).set(value)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
