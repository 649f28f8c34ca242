"""The stack's Kafka takes only SASL/SCRAM principals, each held to its ACLs (issue 20, 7).

Every refusal is paired with what the same principal may do, so that a test cannot pass because
nothing works at all.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from edgecloud.adapters.kafka_admin import metadata_ready
from edgecloud.cloud.settings import DEFAULT_GROUP_ID
from edgecloud.core.kafka import KafkaConnection
from edgecloud.core.topics import kafka_topic
from edgecloud.dev.stack import Infra

DENIED = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}


@pytest.fixture(autouse=True)
def _sasl_stack(stack: Infra) -> None:
    if not stack.kafka_client().sasl:
        pytest.skip("an external Kafka (EDGECLOUD_TEST_KAFKA_BOOTSTRAP) without SASL")


def produce(
    kafka: KafkaConnection, topic: str, n: int = 5, idempotent: bool = True
) -> list[int | None]:
    """Produce ``n`` records; returns each delivery's error code (None: delivered), or the
    fatal error's code once for a producer the broker refuses outright."""
    reports: list[int | None] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        reports.append(None if err is None else err.code())

    conf = {"enable.idempotence": idempotent, "acks": "all", "message.timeout.ms": 30000}
    producer = Producer(kafka.client_config(**conf))
    for i in range(n):
        producer.produce(topic, key=b"k", value=f"v{i}".encode(), on_delivery=on_delivery)
    try:
        assert producer.flush(60) == 0
    except KafkaException as exc:
        assert None not in reports, reports
        return [exc.args[0].code()]
    return reports


def consume(kafka: KafkaConnection, group: str, topic: str, want: int) -> tuple[int, set[int]]:
    """Read ``topic`` as a member of ``group``: (records read, error codes seen)."""
    conf: dict[str, Any] = {
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    consumer = Consumer(kafka.client_config(**conf))
    read, errors = 0, set()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while read < want and not errors and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is None:
                read += 1
            elif error.code() != KafkaError._PARTITION_EOF:
                errors.add(error.code())
    finally:
        consumer.close()
    return read, errors


def client_errors(kafka: KafkaConnection, timeout_s: float = 30.0) -> list[KafkaError]:
    """The errors a client reports while it tries to connect (polled until one comes)."""
    seen: list[KafkaError] = []
    producer = Producer(kafka.client_config(**{"error_cb": seen.append}))
    deadline = time.monotonic() + timeout_s
    while not seen and time.monotonic() < deadline:
        producer.poll(0.2)
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=3)
    return seen


def test_unauthenticated_and_wrong_password_clients_are_refused(stack: Infra) -> None:
    good = stack.kafka_client("bridge")
    assert metadata_ready(good, timeout=10)
    anonymous = KafkaConnection(stack.kafka_bootstrap)  # PLAINTEXT on the only client port
    assert not metadata_ready(anonymous, timeout=5)
    assert client_errors(anonymous)  # the broker drops it before any request is answered
    wrong = good.as_user("bridge", password="not-the-password")
    errors = client_errors(wrong)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert any("invalid credentials" in e.str() for e in errors), errors
    nobody = good.as_user("intruder", password="x")
    assert any(e.code() == KafkaError._AUTHENTICATION for e in client_errors(nobody))


def test_bridge_writes_its_topics_only_and_reads_none(stack: Infra, kafka_prefix: str) -> None:
    bridge = stack.kafka_client("bridge")
    readings = kafka_topic("reading", kafka_prefix)
    assert produce(bridge, readings) == [None] * 5
    denied = produce(bridge, f"{kafka_prefix}other")
    assert denied == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 5
    read, errors = consume(bridge, f"{DEFAULT_GROUP_ID}-{kafka_prefix}b", readings, want=5)
    assert read == 0 and errors and errors <= DENIED, errors


def test_worker_reads_the_events_topics_and_cannot_produce(stack: Infra, kafka_prefix: str) -> None:
    readings = kafka_topic("reading", kafka_prefix)
    assert produce(stack.kafka_client("bridge"), readings, n=7) == [None] * 7
    worker = stack.kafka_client("worker")
    group = f"{DEFAULT_GROUP_ID}-{kafka_prefix}w"
    assert consume(worker, group, readings, want=7) == (7, set())
    # no producer id for it (no write ACL anywhere), and no write on the topic either
    assert produce(worker, readings, n=3) == [KafkaError.CLUSTER_AUTHORIZATION_FAILED]
    denied = produce(worker, readings, n=3, idempotent=False)
    assert denied == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    # a group that is not the worker's: refused even on its own topic
    read, errors = consume(worker, f"other-{kafka_prefix}", readings, want=1)
    assert read == 0 and KafkaError.GROUP_AUTHORIZATION_FAILED in errors, errors


def test_dapr_and_bench_principals_stay_in_their_prefixes(stack: Infra, kafka_prefix: str) -> None:
    dapr = stack.kafka_client("dapr-cloud")
    own = f"{kafka_prefix}edgecloud.dapr.rollouts"
    assert produce(dapr, own, n=2) == [None, None]
    assert consume(dapr, f"edgecloud-dapr-{kafka_prefix}", own, want=2) == (2, set())
    readings = kafka_topic("reading", kafka_prefix)
    assert produce(dapr, readings, n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    bench = stack.kafka_client("bench")
    assert produce(bench, readings, n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_revoked_prefix_is_refused_again(stack: Infra, unique_id: str) -> None:
    prefix = f"r{unique_id}."
    topic = kafka_topic("reading", prefix)
    stack.kafka_grant(prefix)
    try:
        assert produce(stack.kafka_client("bridge"), topic, n=1) == [None]
    finally:
        stack.kafka_revoke(prefix)
    assert prefix not in stack.kafka.credentials.prefixes()
    # ACL changes reach the broker's authorizer through the metadata log: poll, not sleep
    deadline = time.monotonic() + 30
    while True:
        errs = produce(stack.kafka_client("bridge"), topic, n=1)
        if errs[0] is not None:
            assert errs == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
            break
        assert time.monotonic() < deadline, "revoked ACL still lets the bridge write"
    from edgecloud.adapters.kafka_admin import delete_topics_with_prefix

    delete_topics_with_prefix(stack.kafka_client(), prefix)
