"""The bridge's producer faults: ``BufferError`` is backpressure, a fatal error rebuilds the
producer and replays the spool (issue 4, item 2).

librdkafka's fatal errors (idempotence state lost: a sequence gap the broker cannot explain, a
fenced producer id) cannot be caused on demand against a real single broker, so the producer is
the one part stood in for here: ``ScriptedProducer`` has ``adapters.kafka.KafkaProducer``'s
interface, a bounded queue (``Backpressure`` when full, as ``BufferError`` is mapped), delivery
reports in produce order a few per ``poll``, and, in its first instance, a fatal error after a
set number of deliveries, reported the way the adapter reports librdkafka's (``fatal_error``
set, the queued records failed with a fatal ``DeliveryError``, ``produce`` refused). Everything
else is the real bridge in-process, fed over the real Mosquitto of the test stack. The real
producer's own paths (delivery, outage, link cut, kill -9) are in tests/e2e/test_bridge_faults.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgecloud.adapters.kafka import DeliveryError
from edgecloud.adapters.mqtt import MqttConfig, make_publisher
from edgecloud.core.errors import Backpressure, TransportError
from edgecloud.core.topics import events_topic
from edgecloud.dev.process import wait_until
from edgecloud.dev.stack import Infra
from edgecloud.sync import bridge as bridge_module
from edgecloud.sync.bridge import Bridge
from edgecloud.sync.settings import BridgeSettings
from edgecloud.testing.tally import Tally, expected_ids, reading_payload, stream

DEVICES, PER_DEVICE = 30, 100


class ScriptedProducer:
    def __init__(
        self,
        on_delivery: Callable[[int, DeliveryError | None], None],
        log: list[tuple[str, bytes, bytes]],
        *,
        capacity: int,
        per_poll: int,
        fatal_after: int | None,
    ) -> None:
        self._on_delivery = on_delivery
        self._log = log
        self._queue: list[tuple[int, str, bytes, bytes]] = []
        self._capacity, self._per_poll, self._fatal_after = capacity, per_poll, fatal_after
        self.delivered = 0
        self.refused = 0
        self.fatal_error: str | None = None
        self.brokers_down = False
        self.last_error: str | None = None

    def produce(
        self, seq: int, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        assert dict(headers).keys() >= {"event_id", "schema", "node_id"}
        if self.fatal_error is not None:
            raise TransportError(f"kafka produce to {topic}: {self.fatal_error}")
        if len(self._queue) >= self._capacity:
            self.refused += 1
            raise Backpressure("kafka producer queue is full")
        self._queue.append((seq, topic, key, value))

    def poll(self, timeout_s: float = 0.0) -> int:
        n = 0
        while self._queue and n < self._per_poll and self.fatal_error is None:
            if self._fatal_after is not None and self.delivered >= self._fatal_after:
                self._go_fatal()
                break
            seq, topic, key, value = self._queue.pop(0)
            self._log.append((topic, key, value))
            self.delivered += 1
            n += 1
            self._on_delivery(seq, None)
        if not n and timeout_s > 0:
            time.sleep(min(timeout_s, 0.005))
        return n

    def _go_fatal(self) -> None:
        self.fatal_error = "_FATAL: Local: Fatal error (scripted)"
        failed, self._queue = self._queue[:5], self._queue[5:]
        for seq, topic, _key, value in failed:  # librdkafka fails queued records with it
            self._on_delivery(
                seq, DeliveryError("_FATAL", "Local: Fatal error", True, False, topic, value)
            )

    def in_queue(self) -> int:
        return len(self._queue)

    def flush(self, timeout_s: float) -> int:
        while self._queue and self.fatal_error is None:
            self.poll(0)
        return len(self._queue)

    def abandon(self) -> None:
        self._queue.clear()


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"log": [], "producers": []}

    def factory(conf: dict[str, Any], on_delivery: Any) -> ScriptedProducer:
        assert conf["enable.idempotence"] is True and conf["acks"] == "all"
        first = not state["producers"]
        p = ScriptedProducer(
            on_delivery, state["log"], capacity=200, per_poll=40,
            fatal_after=1200 if first else None,
        )  # fmt: skip
        state["producers"].append(p)
        return p

    monkeypatch.setattr(bridge_module, "KafkaProducer", factory)
    monkeypatch.setattr(bridge_module, "ensure_topics", lambda *a, **k: [])
    yield state


def test_backpressure_and_a_fatal_error_lose_nothing(
    stack: Infra, scripted: dict[str, Any], unique_id: str, tmp_path: Path
) -> None:
    user, pw = stack.mqtt_account("bridge")
    node = f"n{unique_id}"
    settings = BridgeSettings(
        node_id=node, mqtt_url=stack.mqtt_url, mqtt_username=user, mqtt_password=pw,
        mqtt_client_id=f"bridge-{unique_id}", kafka_bootstrap="127.0.0.1:9",
        kafka_topic_prefix="p.", spool_dir=tmp_path / "spool", bridge_http_port=0,
        heartbeat_interval_s=3600, batch_size=100,
    )  # fmt: skip
    stop = threading.Event()
    bridge = Bridge(settings, stop)
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: bridge.subscriber is not None, 30, "bridge subscribed")
        admin, apw = stack.mqtt_account("admin")
        pub = make_publisher(MqttConfig.from_url(stack.mqtt_url, username=admin, password=apw))
        pub.start()
        topic = events_topic(node, "reading")
        pub.wait([pub.publish(topic, reading_payload(node, d, s))
                  for d, s in stream(DEVICES, PER_DEVICE, "f")], 60)  # fmt: skip
        pub.stop()
        ids = expected_ids(DEVICES, PER_DEVICE, "f")
        tally = Tally(expected=ids)
        done = 0

        def all_delivered() -> bool:
            nonlocal done
            new = scripted["log"][done:]  # one snapshot: the bridge thread appends meanwhile
            done += len(new)
            for topic, key, value in new:
                if topic == "p.edgecloud.readings":  # the bridge's own heartbeat goes too
                    tally.add(key, value)
            return tally.complete() and bridge.spool.unacked_records == 0

        wait_until(all_delivered, 60, "every event delivered and the spool empty")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    first, *rest = scripted["producers"]
    assert first.fatal_error is not None and first.delivered == 1200
    assert len(rest) == 1 and rest[0].fatal_error is None  # rebuilt once, then healthy
    assert bridge.metrics.counts["producer_rebuilds"] == 1
    assert bridge.metrics.counts["kafka_errors"] >= 1  # the fatal delivery reports
    assert first.refused > 0  # the queue was full: Backpressure, records kept in the spool
    assert bridge.metrics.producer_full._value.get() > 0
    sample = bridge.metrics.registry.get_sample_value
    assert (sample("edgecloud_bridge_spool_sync_seconds_count") or 0) >= 1  # one per MQTT batch
    # every 16th spool seq that the healthy producer delivered is timed (the fatal one's 1,200
    # deliveries are timed too); nothing can take longer than the test did
    timed = sample("edgecloud_bridge_delivery_seconds_count") or 0
    assert timed >= (len(ids) - 1200) // 16
    assert (sample("edgecloud_bridge_delivery_seconds_sum") or 0) < timed * 60
    assert tally.lost(ids) == 0
    assert tally.order_violations == 0
    readings = [r for r in scripted["log"] if r[0] == "p.edgecloud.readings"]
    # replayed from the spool's watermark: what was delivered and acked before the fatal error
    # is not sent again, apart from records acked out of order behind an unacked one (events of
    # other nodes on the shared broker, if any, are counted apart as foreign)
    assert tally.messages + tally.foreign == len(readings)
    assert tally.messages == len(ids) + tally.duplicates
    assert tally.duplicates < 1200
