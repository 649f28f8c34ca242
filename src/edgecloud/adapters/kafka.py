"""confluent-kafka producer and admin of the sync bridge (the only module of the bridge that
imports the SDK).

Semantics of the confluent-kafka examples: one long-lived ``Producer`` (idempotent, acks=all,
compressed, small linger), ``poll(0)`` from the caller's loop to serve delivery reports,
``BufferError`` raised as ``Backpressure``, ``flush`` on shutdown. ``message.timeout.ms`` is 0
(infinite) by default: during an outage librdkafka holds its queue and retries, the spool holds
the rest. A fatal error (``KafkaError.fatal()``, e.g. an idempotence violation) is recorded in
``fatal_error``; the owner then builds a new producer and replays its spool.

``ensure_topics`` creates topics (admin), ``read_topics`` reads them back for tests and benches.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from edgecloud.core.errors import Backpressure, ConfigError, TransportError
from edgecloud.core.kafka import KafkaConnection

log = logging.getLogger("edgecloud.adapters.kafka")
_rdlog = logging.getLogger("librdkafka")

# What the bridge always sets; EDGECLOUD_KAFKA_CONFIG may override anything but these.
PINNED = {"enable.idempotence": True, "acks": "all"}
READER_GROUP_PREFIX = "edgecloud-reader-"  # read_topics' throw-away consumer groups


@dataclass(frozen=True, slots=True)
class DeliveryError:
    code: str
    message: str
    fatal: bool
    too_large: bool
    topic: str
    value: bytes


DeliveryCallback = Callable[[int, DeliveryError | None], None]


def producer_config(
    conn: KafkaConnection,
    *,
    linger_ms: float = 2.0,
    compression: str = "lz4",
    queue_messages: int = 200_000,
) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "compression.type": compression,
        "linger.ms": linger_ms,
        "message.timeout.ms": 0,
        "max.in.flight.requests.per.connection": 5,
        "queue.buffering.max.messages": queue_messages,
        "queue.buffering.max.kbytes": 512 * 1024,
        "batch.num.messages": 10_000,
        "socket.keepalive.enable": True,
        "reconnect.backoff.max.ms": 2000,
        "client.id": "edgecloud-bridge",
    }
    extra = conn.extra
    conf.update(conn.client_config())
    for key, value in PINNED.items():
        if key in extra and str(extra[key]).lower() != str(value).lower():
            raise ConfigError(f"the bridge needs {key}={value}; EDGECLOUD_KAFKA_CONFIG sets it")
    conf.update(PINNED)
    return conf


class KafkaProducer:
    """One idempotent producer; ``produce`` takes the spool seq returned in the report."""

    def __init__(self, conf: dict[str, Any], on_delivery: DeliveryCallback) -> None:
        self._on_delivery = on_delivery
        self.fatal_error: str | None = None
        self.brokers_down = False
        self.last_error: str | None = None
        full = {**conf, "error_cb": self._error_cb, "logger": _rdlog}
        try:
            self._producer = Producer(full)
        except KafkaException as exc:
            raise ConfigError(f"kafka producer config: {exc}") from exc

    def _error_cb(self, err: KafkaError) -> None:
        self.last_error = f"{err.name()}: {err.str()}"
        if err.fatal():
            self.fatal_error = self.last_error
            log.error("kafka fatal error", extra={"kafka_error": self.last_error})
            return
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.brokers_down = True
        log.warning("kafka client error", extra={"kafka_error": self.last_error})

    def _report(self, seq: int, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self.brokers_down = False
            self._on_delivery(seq, None)
            return
        code = err.code()
        self._on_delivery(
            seq,
            DeliveryError(
                err.name(),
                err.str(),
                err.fatal(),
                code == KafkaError.MSG_SIZE_TOO_LARGE,
                msg.topic() or "",
                msg.value() or b"",
            ),
        )

    def produce(
        self,
        seq: int,
        topic: str,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, bytes]],
    ) -> None:
        try:
            self._producer.produce(
                topic,
                value,
                key,
                headers=headers,  # type: ignore[arg-type]
                on_delivery=functools.partial(self._report, seq),
            )
        except BufferError as exc:
            raise Backpressure("kafka producer queue is full") from exc
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.fatal():
                self.fatal_error = f"{err.name()}: {err.str()}"
            raise TransportError(f"kafka produce to {topic}: {exc}") from exc

    def poll(self, timeout_s: float = 0.0) -> int:
        try:
            return int(self._producer.poll(timeout_s))
        except KafkaException as exc:
            # librdkafka raises a fatal error here too (e.g. CLUSTER_AUTHORIZATION_FAILED for
            # the producer id, when a broker's ACLs are not written yet): the owner rebuilds.
            err = exc.args[0] if exc.args else None
            if not (isinstance(err, KafkaError) and err.fatal()):
                raise TransportError(f"kafka poll: {exc}") from exc
            self.fatal_error = self.fatal_error or f"{err.name()}: {err.str()}"
            log.error("kafka fatal error", extra={"kafka_error": self.fatal_error})
            return 0

    def in_queue(self) -> int:
        return len(self._producer)

    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding deliveries; returns how many are still outstanding."""
        if self.fatal_error is not None:
            return len(self._producer)  # nothing more will be delivered: the spool keeps it
        try:
            return int(self._producer.flush(timeout_s))
        except (KafkaException, SystemError) as exc:
            # A fatal error raised while flush serves callbacks comes out as KafkaException, or
            # as SystemError when a delivery callback runs with it pending (confluent-kafka).
            self.fatal_error = self.fatal_error or str(exc)
            log.error("kafka fatal error", extra={"kafka_error": self.fatal_error})
            return len(self._producer)

    def abandon(self) -> None:
        """Drop what is queued (after a fatal error): reports of it are ignored by the owner."""
        try:
            self._producer.purge()
            self._producer.poll(0)
        except KafkaException as exc:
            log.warning("kafka purge failed", extra={"kafka_error": str(exc)})


def _admin(conn: KafkaConnection) -> AdminClient:
    conf = {"socket.timeout.ms": 5000, **conn.client_config()}
    return AdminClient(conf, logger=_rdlog)


def ensure_topics(
    conn: KafkaConnection,
    names: Sequence[str],
    *,
    partitions: int = -1,
    config: dict[str, str] | None = None,
    timeout_s: float = 15.0,
) -> list[str]:
    """Create the topics that do not exist yet (-1 partitions: the broker's default)."""
    admin = _admin(conn)
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
        missing = [n for n in names if n not in existing]
        if not missing:
            return []
        new = [NewTopic(n, num_partitions=partitions, config=config or {}) for n in missing]
        for name, future in admin.create_topics(new, operation_timeout=timeout_s).items():
            try:
                future.result()
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if not (
                    isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS
                ):
                    raise
            log.info("kafka topic created", extra={"topic": name})
    except KafkaException as exc:
        raise TransportError(f"creating topics {list(names)}: {exc}") from exc
    return missing


@dataclass(frozen=True, slots=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int


def read_topics(
    conn: KafkaConnection,
    topics: Sequence[str],
    *,
    expect: int | None = None,
    idle_s: float = 5.0,
    timeout_s: float = 120.0,
    on_message: Callable[[Consumed], None] | None = None,
    until: Callable[[], bool] | None = None,
    extra: dict[str, Any] | None = None,
) -> list[Consumed]:
    """Everything in ``topics`` from the beginning: stops at ``expect`` messages, after
    ``idle_s`` without a message (once at least one came or ``expect`` is None), when ``until()``
    says so, or after ``timeout_s``.
    """
    conf = {
        "group.id": f"{READER_GROUP_PREFIX}{uuid.uuid4().hex[:10]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 10,
        "topic.metadata.refresh.interval.ms": 2000,
        "logger": _rdlog,
        **conn.client_config(**(extra or {})),
    }
    consumer = Consumer(conf)
    out: list[Consumed] = []
    try:
        consumer.subscribe(list(topics))
        deadline = time.monotonic() + timeout_s
        last = time.monotonic()
        while time.monotonic() < deadline:
            if expect is not None and len(out) >= expect:
                break
            if until is not None and until():
                break
            if time.monotonic() - last > idle_s and (out or expect is None):
                break
            for msg in consumer.consume(num_messages=5000, timeout=0.2):
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("kafka read error", extra={"kafka_error": str(error)})
                    continue
                value = msg.value()
                item = Consumed(
                    msg.topic() or "",
                    msg.partition() or 0,
                    msg.offset() or 0,
                    _as_bytes(msg.key()),
                    _as_bytes(value) or b"",
                    _headers(msg.headers()),
                    msg.timestamp()[1],
                )
                out.append(item)
                last = time.monotonic()
                if on_message is not None:
                    on_message(item)
    except KafkaException as exc:
        raise TransportError(f"reading {list(topics)}: {exc}") from exc
    finally:
        consumer.close()
    return out


def _as_bytes(v: str | bytes | None) -> bytes | None:
    return v.encode() if isinstance(v, str) else v


def _headers(raw: Any) -> dict[str, bytes]:
    pairs = raw.items() if isinstance(raw, dict) else (raw or [])
    return {str(k): _as_bytes(v) or b"" for k, v in pairs}
