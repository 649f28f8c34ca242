"""The bridge in-process on the shared test stack: events in over MQTT, read back from Kafka."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest

from edgecloud.adapters.kafka import read_topics
from edgecloud.adapters.mqtt import MqttConfig, Publisher, make_publisher
from edgecloud.bench.bridge import all_topics
from edgecloud.core.topics import events_topic, kafka_dead_letter_topic, kafka_topic
from edgecloud.dev.process import wait_until
from edgecloud.dev.stack import Infra
from edgecloud.sync.bridge import Bridge
from edgecloud.testing.tally import Tally, device_name, expected_ids, reading_payload, stream
from helpers.bridge import bridge_thread


@pytest.fixture
def running(stack: Infra, kafka_prefix: str, unique_id: str, tmp_path: Path) -> Iterator[Bridge]:
    with bridge_thread(
        stack, kafka_prefix, unique_id, tmp_path, kafka_principal="bridge",
        heartbeat_interval_s=0.5,
    ) as (bridge, _thread):  # fmt: skip
        yield bridge


def publisher(stack: Infra) -> Publisher:
    user, pw = stack.mqtt_account("admin")
    pub = make_publisher(MqttConfig.from_url(stack.mqtt_url, username=user, password=pw))
    pub.start()
    return pub


def test_events_single_and_batched_reach_kafka_in_order(
    stack: Infra, running: Bridge, kafka_prefix: str
) -> None:
    node = running.settings.node_id
    pub = publisher(stack)
    topic = events_topic(node, "reading")
    items = list(stream(devices=5, per_device=200, tag="s"))
    infos = []
    for i in range(0, len(items), 10):  # arrays of 10 events, then 500 single events
        chunk = items[i : i + 10]
        if i < 500:
            body = "[" + ",".join(reading_payload(node, d, s).decode() for d, s in chunk) + "]"
            infos.append(pub.publish(topic, body))
        else:
            infos.extend(pub.publish(topic, reading_payload(node, d, s)) for d, s in chunk)
    bad = pub.publish(topic, b"{broken")
    pub.wait([*infos, bad])
    pub.stop()
    ids = expected_ids(5, 200, "s")
    tally = Tally(expected=ids)
    msgs = read_topics(
        stack.kafka_client(),
        [kafka_topic("reading", kafka_prefix)],
        on_message=lambda m: tally.add(m.key, m.value),
        until=tally.complete,
        timeout_s=60,
    )
    assert tally.summary(ids) == {
        "published": 1000,
        "unique": 1000,
        "lost": 0,
        "duplicates": 0,
        "order_violations": 0,
        "unexpected": 0,
    }
    first = msgs[0]
    assert first.key == device_name(0, "s").encode() or first.key.startswith(b"sdev-")
    assert set(first.headers) == {"event_id", "schema", "node_id"}
    assert first.headers["node_id"] == node.encode()
    dead = read_topics(
        stack.kafka_client(), [kafka_dead_letter_topic(kafka_prefix)], expect=1, timeout_s=30
    )
    assert len(dead) == 1
    assert dead[0].headers["reason"] == b"bad_json"
    assert json.loads(dead[0].value)["payload"] == "{broken"
    wait_until(lambda: running.spool.unacked_records == 0, 20, "spool empty")
    port = running.settings.bridge_http_port
    text = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "edgecloud_bridge_spool_depth" in text
    health = json.loads(urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())
    assert health["ok"] is True and health["counters"]["dead_letters"] == 1
    beats = read_topics(
        stack.kafka_client(), [kafka_topic("heartbeat", kafka_prefix)], expect=1, timeout_s=30
    )
    beat = json.loads(beats[0].value)
    assert beat["type"] == "heartbeat" and beat["data"]["role"] == "bridge"
    assert {"received", "processed", "dead_letters"} <= set(beat["data"]["counters"])
    assert "spool_depth" in beat["data"]
    assert sorted(all_topics(kafka_prefix))[0].startswith(kafka_prefix)
