"""confluent-kafka admin calls used by the local stack and the tests (readiness, ACLs, clean-up).

The bridge's producer and admin live in ``adapters/kafka.py``; this module asks a broker
whether it answers, writes the stack's ACLs (``Grant`` rows of ``dev/kafka_auth.py``) and
removes test topics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from edgecloud.core.errors import TransportError
from edgecloud.core.kafka import KafkaConnection

_log = logging.getLogger("edgecloud.adapters.kafka_admin")


@dataclass(frozen=True, slots=True)
class Grant:
    """One ALLOW ACL: ``principal`` (a user name) may ``operation`` (``READ``, ``WRITE``,
    ``DESCRIBE``, ``CREATE``, ``IDEMPOTENT_WRITE``, ``ALL``) on ``resource`` (``TOPIC``,
    ``GROUP``, ``BROKER``: the cluster) named ``name``, matched ``LITERAL`` or ``PREFIXED``."""

    principal: str
    resource: str
    name: str
    operation: str
    pattern: str = "LITERAL"

    def binding(self) -> AclBinding:
        return AclBinding(
            ResourceType[self.resource],
            self.name,
            ResourcePatternType[self.pattern],
            f"User:{self.principal}",
            "*",
            AclOperation[self.operation],
            AclPermissionType.ALLOW,
        )


def _admin(conn: KafkaConnection) -> AdminClient:
    # librdkafka's connection errors go to Python logging, not to stderr.
    conf = conn.client_config(**{"socket.timeout.ms": 3000})
    return AdminClient(conf, logger=_log)


def metadata_ready(conn: KafkaConnection, timeout: float = 3.0) -> bool:
    """True when a metadata request succeeds and names at least one broker."""
    try:
        metadata = _admin(conn).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def create_acls(conn: KafkaConnection, grants: Sequence[Grant], timeout: float = 30.0) -> int:
    """Create the ACLs (idempotent: an existing identical ACL is kept); returns how many."""
    if not grants:
        return 0
    admin = _admin(conn)
    try:
        bindings = [g.binding() for g in grants]
        for future in admin.create_acls(bindings, request_timeout=timeout).values():
            future.result()
    except KafkaException as exc:
        raise TransportError(f"creating kafka ACLs: {exc}") from exc
    return len(grants)


def delete_acls(conn: KafkaConnection, grants: Sequence[Grant], timeout: float = 30.0) -> int:
    """Delete exactly these ACLs; returns how many bindings went."""
    if not grants:
        return 0
    admin = _admin(conn)
    filters = [
        AclBindingFilter(
            b.restype,
            b.name,
            b.resource_pattern_type,
            b.principal,
            b.host,
            b.operation,
            b.permission_type,
        )
        for b in (g.binding() for g in grants)
    ]
    try:
        futures = admin.delete_acls(filters, request_timeout=timeout).values()
        return sum(len(future.result()) for future in futures)
    except KafkaException as exc:
        raise TransportError(f"deleting kafka ACLs: {exc}") from exc


def delete_topics_with_prefix(
    conn: KafkaConnection, prefix: str, timeout: float = 30.0
) -> list[str]:
    """Delete every topic whose name starts with ``prefix``; returns their names."""
    if not prefix:
        raise ValueError("refusing to delete topics with an empty prefix")
    admin = _admin(conn)
    try:
        names = [t for t in admin.list_topics(timeout=timeout).topics if t.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=timeout).values():
                future.result()
    except KafkaException as exc:
        raise TransportError(f"deleting topics {prefix}*: {exc}") from exc
    return names
