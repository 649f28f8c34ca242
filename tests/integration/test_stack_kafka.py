"""Kafka produce / consume on the stack's broker with confluent-kafka, counting every message."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, Message, Producer

from edgecloud.dev.stack import Infra

COUNT = 2000


def test_idempotent_produce_then_consume_everything(
    stack: Infra, kafka_prefix: str, unique_id: str
) -> None:
    topic = f"{kafka_prefix}roundtrip"
    kafka = stack.kafka_client("admin")  # a topic of no role: the super user's
    producer = Producer(
        kafka.client_config(**{"enable.idempotence": True, "acks": "all", "linger.ms": 5})
    )
    delivered: list[tuple[int, int]] = []
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.partition(), msg.offset()))

    for i in range(COUNT):
        producer.produce(
            topic,
            key=f"device-{i % 7}",
            value=f"{i}".encode(),
            headers={"event_id": f"e{i}"},
            on_delivery=on_delivery,
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []
    assert len(delivered) == COUNT
    assert len(set(delivered)) == COUNT

    consumer = Consumer(
        kafka.client_config(
            **{
                "group.id": f"g{unique_id}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
    )
    seen: dict[int, int] = {}
    keys_by_partition: dict[bytes, set[int]] = {}
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(seen) < COUNT and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            value = int(msg.value() or b"-1")
            seen[value] = seen.get(value, 0) + 1
            keys_by_partition.setdefault(msg.key() or b"", set()).add(msg.partition())
            assert dict(msg.headers() or [])["event_id"] == f"e{value}".encode()
    finally:
        consumer.close()
    assert sorted(seen) == list(range(COUNT)), "lost messages"
    assert max(seen.values()) == 1, "duplicates"
    # One key, one partition: per-device order is kept.
    assert all(len(parts) == 1 for parts in keys_by_partition.values())
    assert len({p for p, _ in delivered}) == 3  # num.partitions=3 on auto-created topics
