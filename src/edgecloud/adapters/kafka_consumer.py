"""confluent-kafka consumer of the cloud worker (the only module of the worker that imports it).

Semantics copied from the confluent-kafka examples: ``enable.auto.commit`` and
``enable.auto.offset.store`` are off; the worker calls ``commit(batch)`` only after the
database transaction of that batch committed, so a crash replays at most the uncommitted batch
(the database side is idempotent). librdkafka errors become ``TransportError``.

``produce_values`` and ``ensure_topics`` serve the benchmark and tooling (same SDK, same module).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from edgecloud.core.errors import TransportError
from edgecloud.core.kafka import KafkaConnection

log = logging.getLogger(__name__)


class RawMessage(NamedTuple):
    """One consumed message (a tuple: cheap to build for every message of a batch)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def _log_error(err: KafkaError) -> None:
    log.warning("kafka client error", extra={"kafka_error": str(err)})


def consumer_lag(stats_json: str) -> dict[str, int]:
    """Per topic, the sum of ``consumer_lag`` over the assigned partitions of a librdkafka
    statistics document (partitions with an unknown lag, -1, and the internal -1 partition are
    left out)."""
    try:
        stats = json.loads(stats_json)
    except ValueError:
        return {}
    lag: dict[str, int] = {}
    for topic, info in (stats.get("topics") or {}).items():
        total, known = 0, False
        for pid, part in (info.get("partitions") or {}).items():
            value = part.get("consumer_lag", -1)
            if pid == "-1" or not isinstance(value, int) or value < 0:
                continue
            total, known = total + value, True
        if known:
            lag[topic] = total
    return lag


class BatchConsumer:
    """A consumer-group member that hands out batches and commits them explicitly."""

    def __init__(
        self,
        conn: KafkaConnection,
        group_id: str,
        topics: Sequence[str],
        extra: dict[str, Any] | None = None,
        on_lag: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        """``on_lag(topic -> messages behind)``: called from ``poll_batch`` every
        ``statistics.interval.ms`` (5 s unless ``extra`` says otherwise) when given."""
        conf: dict[str, Any] = {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "fetch.wait.max.ms": 100,
            "queued.min.messages": 20000,
            "error_cb": _log_error,
            "logger": logging.getLogger("librdkafka"),
        }
        if on_lag is not None:
            conf["statistics.interval.ms"] = 5000
            conf["stats_cb"] = lambda text: on_lag(consumer_lag(text))
        conf.update(conn.client_config(**(extra or {})))
        try:
            self._consumer = Consumer(conf)
            self._consumer.subscribe(list(topics))
        except KafkaException as exc:
            raise TransportError(f"kafka consumer: {exc}") from exc
        self.topics = list(topics)

    def poll_batch(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        """Up to ``max_messages`` messages, waiting at most ``timeout_s`` for the first ones."""
        try:
            msgs = self._consumer.consume(num_messages=max_messages, timeout=timeout_s)
        except KafkaException as exc:
            raise TransportError(f"kafka consume: {exc}") from exc
        out: list[RawMessage] = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise TransportError(f"kafka fatal error: {err}")
                log.warning("kafka message error", extra={"kafka_error": str(err)})
                continue
            out.append(
                RawMessage(
                    m.topic() or "", m.partition() or 0, m.offset() or 0, m.key(), m.value() or b""
                )
            )
        return out

    def commit(self, batch: Iterable[RawMessage], asynchronous: bool = False) -> None:
        """Store and commit the offsets after ``batch`` (call only after the DB commit).

        ``asynchronous``: do not wait for the broker; a lost commit only means a replay, which
        the idempotent database write absorbs. ``close()`` commits what is stored, waiting.
        """
        high: dict[tuple[str, int], int] = {}
        for m in batch:
            key = (m.topic, m.partition)
            if m.offset + 1 > high.get(key, -1):
                high[key] = m.offset + 1
        if not high:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in high.items()]
        try:
            self._consumer.store_offsets(offsets=tps)
            if asynchronous:
                self._consumer.commit(asynchronous=True)
            else:
                self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError._NO_OFFSET:
                return
            raise TransportError(f"kafka commit: {exc}") from exc

    def assignment(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self._consumer.assignment()]

    def close(self) -> None:
        try:
            self._consumer.commit(asynchronous=False)  # the stored offsets, before leaving
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if not (isinstance(err, KafkaError) and err.code() == KafkaError._NO_OFFSET):
                log.warning("offset commit at close failed", extra={"kafka_error": str(exc)})
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("kafka consumer close failed", extra={"kafka_error": str(exc)})


def ensure_topics(
    conn: KafkaConnection,
    topics: Sequence[str],
    partitions: int = 3,
    timeout_s: float = 30.0,
) -> None:
    """Create the topics that do not exist yet (replication factor 1 on a dev broker)."""
    admin = AdminClient(conn.client_config())
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise TransportError(f"kafka list topics: {exc}") from exc
    new = [
        NewTopic(t, num_partitions=partitions, replication_factor=1)
        for t in topics
        if t not in existing
    ]
    if not new:
        return
    for topic, fut in admin.create_topics(new, operation_timeout=timeout_s).items():
        try:
            fut.result()
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise TransportError(f"kafka create topic {topic}: {exc}") from exc


def produce_values(
    conn: KafkaConnection,
    topic: str,
    items: Iterable[tuple[bytes | None, bytes]],
    extra: dict[str, Any] | None = None,
    timeout_s: float = 120.0,
) -> int:
    """Produce (key, value) pairs idempotently with acks=all; returns how many were delivered."""
    delivered = 0
    failed: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: Any) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1
        else:
            failed.append(str(err))

    producer = Producer(
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
            **conn.client_config(**(extra or {})),
        }
    )
    for key, value in items:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)  # backpressure: let deliveries drain
        producer.poll(0)
    remaining = producer.flush(timeout_s)
    if remaining or failed:
        raise TransportError(
            f"kafka produce to {topic}: {remaining} undelivered, {len(failed)} failed "
            f"({failed[:1]})"
        )
    return delivered


def make_consumer(
    conn: KafkaConnection, group_id: str, topics: Sequence[str], extra: dict[str, Any] | None = None
) -> BatchConsumer:
    return BatchConsumer(conn, group_id, topics, extra)


__all__ = [
    "BatchConsumer",
    "RawMessage",
    "ensure_topics",
    "make_consumer",
    "produce_values",
]
