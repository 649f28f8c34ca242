"""What a topic promises about durability: its replication factor and ``min.insync.replicas``
(the benchmarks state them next to every acks=all figure; on one broker both are 1, and acks=all
is then trivially satisfied)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

from edgecloud.adapters.kafka import _admin
from edgecloud.core.errors import TransportError
from edgecloud.core.kafka import KafkaConnection


def topic_durability(conn: KafkaConnection, topic: str, timeout_s: float = 15.0) -> dict[str, Any]:
    """``{"topic", "partitions", "replication_factor", "min_insync_replicas", "brokers"}``."""
    admin = _admin(conn)
    try:
        meta = admin.list_topics(topic=topic, timeout=timeout_s)
        parts = meta.topics[topic].partitions
        rf = min((len(p.replicas) for p in parts.values()), default=0)
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        configs = admin.describe_configs([res])[res].result(timeout=timeout_s)
        isr = int(configs["min.insync.replicas"].value)
    except (KafkaException, KeyError) as exc:
        raise TransportError(f"describing topic {topic}: {exc}") from exc
    return {
        "topic": topic,
        "partitions": len(parts),
        "replication_factor": rf,
        "min_insync_replicas": isr,
        "brokers": len(meta.brokers),
    }
