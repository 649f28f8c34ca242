"""One MQTT batch through the bridge's ingest step: the records reach the producer before the
spool's fdatasync (so Kafka works while the disk syncs), and the PUBACKs never go before it;
and the loop's short waits stop while every Kafka broker is down.

The producer and the subscriber are recorders; the spool is the real one, on a real directory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from edgecloud.adapters.kafka import DeliveryError
from edgecloud.adapters.mqtt import InboundMessage
from edgecloud.core.topics import events_topic
from edgecloud.sync import bridge as bridge_module
from edgecloud.sync.bridge import Bridge
from edgecloud.sync.settings import BridgeSettings
from edgecloud.testing.tally import reading_payload

NODE = "edge-7"


class Recorder:
    """Producer and subscriber stand-in: every call goes into one shared event list."""

    def __init__(self, events: list[tuple[str, Any]]) -> None:
        self.events = events
        self.connected = threading.Event()
        self.fatal_error: str | None = None
        self.brokers_down = False

    # producer side
    def produce(
        self, seq: int, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        self.events.append(("produce", seq))

    def in_queue(self) -> int:
        return sum(1 for kind, _ in self.events if kind == "produce")

    def poll(self, timeout_s: float = 0.0) -> int:
        return 0

    # subscriber side
    def ack_all(self, messages: Iterable[InboundMessage]) -> None:
        self.events.append(("ack", [m.mid for m in messages]))


@pytest.fixture
def setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Bridge, list[tuple[str, Any]], Recorder]:
    events: list[tuple[str, Any]] = []
    rec = Recorder(events)

    def factory(conf: dict[str, Any], on_delivery: Callable[[int, DeliveryError | None], None]):
        return rec

    monkeypatch.setattr(bridge_module, "KafkaProducer", factory)
    settings = BridgeSettings(
        node_id=NODE, spool_dir=tmp_path / "spool", bridge_http_port=0, kafka_topic_prefix="p."
    )
    bridge = Bridge(settings)
    real_sync = bridge.spool.sync

    def sync() -> None:
        events.append(("sync", bridge.spool.tail_seq))
        real_sync()

    monkeypatch.setattr(bridge.spool, "sync", sync)
    bridge.subscriber = rec  # type: ignore[assignment]
    return bridge, events, rec


def messages(rec: Recorder, n: int) -> list[InboundMessage]:
    topic = events_topic(NODE, "reading")
    out = []
    for i in range(n):
        payload = reading_payload(NODE, f"dev-{i % 3}", i)
        out.append(InboundMessage(topic, payload, 100 + i, 1, False, 0.0, rec, 1))
    return out


def test_records_are_produced_before_the_sync_and_acked_after_it(
    setup: tuple[Bridge, list[tuple[str, Any]], Recorder],
) -> None:
    bridge, events, rec = setup
    bridge._ingest(messages(rec, 50))
    kinds = [kind for kind, _ in events]
    assert kinds == ["produce"] * 50 + ["sync", "ack"]
    assert [seq for kind, seq in events if kind == "produce"] == list(range(50))
    assert events[-1] == ("ack", [100 + i for i in range(50)])
    assert bridge.spool.unacked_records == 50  # still spooled until the delivery reports


def test_a_failed_sync_sends_no_ack(
    setup: tuple[Bridge, list[tuple[str, Any]], Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge, events, rec = setup

    def broken() -> None:
        events.append(("sync", None))
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(bridge.spool, "sync", broken)
    with pytest.raises(OSError):
        bridge._ingest(messages(rec, 10))
    # produced already (a duplicate at worst: the broker redelivers what was never acked)
    assert [kind for kind, _ in events] == ["produce"] * 10 + ["sync"]


def test_the_loop_waits_longer_while_every_broker_is_down(
    setup: tuple[Bridge, list[tuple[str, Any]], Recorder],
) -> None:
    bridge, _events, rec = setup
    assert bridge._kafka_busy() is False  # nothing pending
    bridge._ingest(messages(rec, 5))  # produced, no delivery report yet
    assert bridge._kafka_busy() is True
    rec.brokers_down = True  # librdkafka's _ALL_BROKERS_DOWN
    assert bridge._kafka_busy() is False
