"""The bridge refused by Kafka's authorizer keeps running and keeps what it took (issue 20, 7).

A producer id refused (``CLUSTER_AUTHORIZATION_FAILED``, fatal: here the bridge runs as the
``worker`` principal, which may not write; in a fault test, a broker whose ACLs are not written
yet) is raised by librdkafka from ``poll``: the bridge must rebuild its producer, not die, and
the events stay in its spool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgecloud.adapters.mqtt import MqttConfig, make_publisher
from edgecloud.core.topics import events_topic
from edgecloud.dev.process import free_port, wait_until
from edgecloud.dev.stack import Infra
from edgecloud.sync.bridge import Bridge
from edgecloud.sync.settings import BridgeSettings
from edgecloud.testing.tally import reading_payload, stream


@pytest.fixture
def refused(stack: Infra, kafka_prefix: str, unique_id: str, tmp_path: Path) -> Iterator[Bridge]:
    if not stack.kafka_client().sasl:
        pytest.skip("an external Kafka without SASL")
    user, pw = stack.mqtt_account("bridge")
    settings = BridgeSettings(
        node_id=f"n{unique_id}",
        mqtt_url=stack.mqtt_url,
        mqtt_username=user,
        mqtt_password=pw,
        mqtt_client_id=f"bridge-{unique_id}",
        **stack.kafka_client("worker").settings(),  # a principal with no write ACL
        kafka_topic_prefix=kafka_prefix,
        spool_dir=tmp_path / "spool",
        bridge_http_port=free_port(),
        heartbeat_interval_s=60.0,
    )
    stop = threading.Event()
    bridge = Bridge(settings, stop)
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    wait_until(lambda: bridge.subscriber is not None, 30, "bridge subscribed")
    yield bridge
    assert thread.is_alive(), "the bridge died of Kafka's refusal"
    stop.set()
    thread.join(30)
    assert not thread.is_alive()


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
