"""The bridge refused by Kafka's authorizer keeps running and keeps what it took (issue 20, 7).

A producer id refused (``CLUSTER_AUTHORIZATION_FAILED``, fatal: here the bridge runs as the
``worker`` principal, which may not write; in a fault test, a broker whose ACLs are not written
yet) is raised by librdkafka from ``poll``: the bridge must rebuild its producer, not die, and
the events stay in its spool.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgecloud.adapters.mqtt import MqttConfig, make_publisher
from edgecloud.core.topics import events_topic
from edgecloud.dev.process import wait_until
from edgecloud.dev.stack import Infra
from edgecloud.sync.bridge import Bridge
from edgecloud.testing.tally import reading_payload, stream
from helpers.bridge import bridge_thread


@pytest.fixture
def refused(stack: Infra, kafka_prefix: str, unique_id: str, tmp_path: Path) -> Iterator[Bridge]:
    if not stack.kafka_client().sasl:
        pytest.skip("an external Kafka without SASL")
    with bridge_thread(
        stack, kafka_prefix, unique_id, tmp_path, kafka_principal="worker",  # no write ACL
        heartbeat_interval_s=60.0,
    ) as (bridge, thread):  # fmt: skip
        yield bridge
        assert thread.is_alive(), "the bridge died of Kafka's refusal"


def test_refused_producer_id_rebuilds_and_keeps_the_events(stack: Infra, refused: Bridge) -> None:
    user, pw = stack.mqtt_account("admin")
    pub = make_publisher(MqttConfig.from_url(stack.mqtt_url, username=user, password=pw))
    pub.start()
    node = refused.settings.node_id
    items = list(stream(devices=2, per_device=10, tag="r"))
    pub.wait(
        [pub.publish(events_topic(node, "reading"), reading_payload(node, d, s)) for d, s in items]
    )
    pub.stop()
    counts = refused.metrics.counts
    wait_until(lambda: counts["producer_rebuilds"] >= 2, 60, "two producer rebuilds")
    wait_until(lambda: counts["received"] >= 20, 30, "20 events spooled")
    assert counts["processed"] == 0  # nothing acknowledged by Kafka
    assert refused.spool.unacked_records >= 20
