"""confluent-kafka admin calls used by the local stack and the tests (readiness, clean-up).

The bridge's producer and admin live in ``adapters/kafka.py``; this module only asks a broker
whether it answers and removes test topics.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from edgecloud.core.errors import TransportError

_log = logging.getLogger("edgecloud.adapters.kafka_admin")


def _admin(bootstrap: str) -> AdminClient:
    # librdkafka's connection errors go to Python logging, not to stderr.
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000}, logger=_log)


def metadata_ready(bootstrap: str, timeout: float = 3.0) -> bool:
    """True when a metadata request succeeds and names at least one broker."""
    try:
        metadata = _admin(bootstrap).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def delete_topics_with_prefix(bootstrap: str, prefix: str, timeout: float = 30.0) -> list[str]:
    """Delete every topic whose name starts with ``prefix``; returns their names."""
    if not prefix:
        raise ValueError("refusing to delete topics with an empty prefix")
    admin = _admin(bootstrap)
    try:
        names = [t for t in admin.list_topics(timeout=timeout).topics if t.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=timeout).values():
                future.result()
    except KafkaException as exc:
        raise TransportError(f"deleting topics {prefix}*: {exc}") from exc
    return names
