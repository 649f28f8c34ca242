"""``edgecloud bench dapr``: the same events published through a daprd sidecar and natively.

A private Mosquitto and one daprd with the edge components (``deploy/dapr/edge``: the
``edge-pubsub`` ``pubsub.mqtt3`` component the agent's decisions use). The same ``messages``
reading events (``edgecloud.event/v1`` JSON, ~300 bytes) go out:

- through the sidecar: the SDK's ``publish_event`` (gRPC), one call at a time; a call returns
  when daprd has the broker's PUBACK (``qos: 1``);
- natively: edgecloud's MQTT publisher, QoS 1, one at a time, waiting for each PUBACK (the
  same semantics: this is the limit), and pipelined in batches of 200 as the agent publishes.

A native subscriber on the broker counts what arrives of the Dapr run (lost / duplicates, by
event id inside the CloudEvent). p50 / p99: per publish call, until it is acknowledged.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgecloud.adapters.dapr import DaprConfig, DaprSidecar
from edgecloud.adapters.mqtt import MqttConfig, make_publisher, make_subscriber
from edgecloud.bench.common import BenchResult, percentile
from edgecloud.core.settings import mqtt_client_options
from edgecloud.core.wire.encode import event_id_text, reading_event_text
from edgecloud.dev.base import Ports
from edgecloud.dev.dapr import Sidecar, SidecarPorts, SidecarSpec
from edgecloud.dev.sidecars import dapr_mqtt_account, mqtt_secret_url
from edgecloud.dev.stack import Infra

BATCH = 200


def _events(node: str, messages: int, device: str = "press-07") -> list[bytes]:
    values = '{"temperature":71.2,"vibration_rms":0.41,"pressure":3.1,"current":12.0}'
    inference = '{"model":"bench","version":"1","score":0.93,"anomaly":true,"escalate":false}'
    ts = "2026-12-03T12:00:00+00:00"
    return [
        reading_event_text(node, device, seq, ts, values, inference).encode()
        for seq in range(messages)
    ]


class _Counter:
    """Native subscriber counting the event ids that arrive on ``topic``."""

    def __init__(self, infra: Infra, topic: str) -> None:
        user, pw = infra.mqtt_account("admin")
        cfg = MqttConfig(host=infra.mqtt_host, port=infra.mqtt_port, username=user, password=pw,
                         **mqtt_client_options())  # fmt: skip
        self.sub = make_subscriber(cfg, [topic], client_id=f"bench-dapr-{uuid.uuid4().hex[:8]}")
        self.seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.sub.start()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self.sub.get_batch(500, 0.05)
            for m in batch:
                body: dict[str, Any] = json.loads(m.payload)
                data = body.get("data", body)  # a CloudEvent from daprd
                eid = str(data.get("event_id"))
                self.seen[eid] = self.seen.get(eid, 0) + 1
            self.sub.ack_all(batch)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.sub.stop()


def _timed(calls: list[Callable[[], None]]) -> tuple[float, list[float]]:
    latencies = []
    t0 = time.monotonic()
    for call in calls:
        c0 = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - c0) * 1000.0)
    return time.monotonic() - t0, latencies


def run(messages: int, say: Callable[[str], None] = print) -> BenchResult:
    node = "bench"
    events = _events(node, messages)
    topic = f"edgecloud/{node}/decisions/anomaly"
    with tempfile.TemporaryDirectory(prefix="edgecloud-bench-dapr-") as tmp:
        infra = Infra(Path(tmp) / "state", Ports.free())
        say(f"starting a private Mosquitto and daprd in {tmp}")
        infra.mosquitto.start()
        url = mqtt_secret_url(infra, *dapr_mqtt_account(infra))
        spec = SidecarSpec("bench-dapr", "edge", SidecarPorts.free(), None, {"mqtt-url": url})
        car = Sidecar(infra.state_dir, spec)
        counter = _Counter(infra, topic)
        dapr = DaprSidecar(DaprConfig(spec.ports.http, spec.ports.grpc, timeout_s=30.0))
        user, pw = infra.mqtt_account("admin")
        cfg = MqttConfig(host=infra.mqtt_host, port=infra.mqtt_port, username=user, password=pw,
                         **mqtt_client_options())  # fmt: skip
        pub = make_publisher(cfg, client_id=f"bench-native-{uuid.uuid4().hex[:8]}")
        try:
            car.wait_ready(car.start())
            warm = _events(node, 1, "warm-up")[0]  # another device: not counted below
            dapr.publish("edge-pubsub", topic, warm)  # connect, warm up
            d_wall, d_lat = _timed(
                [lambda e=e: dapr.publish("edge-pubsub", topic, e) for e in events]  # type: ignore[misc]
            )
            say(f"dapr sidecar: {messages / d_wall:,.0f} events/s")
            deadline = time.monotonic() + 30.0
            ids = {event_id_text("press-07", s) for s in range(messages)}
            while not ids <= set(counter.seen) and time.monotonic() < deadline:
                time.sleep(0.1)
            lost = len(ids - set(counter.seen))
            dups = sum(max(0, counter.seen.get(i, 0) - 1) for i in ids)
            pub.start()
            native_topic = f"{topic}/native"
            n_wall, n_lat = _timed(
                [lambda e=e: pub.wait([pub.publish(native_topic, e, qos=1)], 30.0) for e in events]  # type: ignore[misc]
            )
            t0 = time.monotonic()
            for start in range(0, messages, BATCH):
                part = events[start : start + BATCH]
                pub.wait([pub.publish(native_topic, e, qos=1) for e in part], 60.0)
            piped = messages / (time.monotonic() - t0)
            say(f"native, one at a time: {messages / n_wall:,.0f}/s; pipelined: {piped:,.0f}/s")
        finally:
            pub.stop()
            dapr.close()
            counter.stop()
            car.stop()
            infra.stop()
    d_rate, n_rate = messages / d_wall, messages / n_wall
    return BenchResult(
        name="dapr",
        messages=messages,
        seconds=round(d_wall, 3),
        rate_per_s=round(d_rate, 1),
        p50_ms=round(percentile(d_lat, 50), 3),
        p99_ms=round(percentile(d_lat, 99), 3),
        lost=lost,
        duplicates=dups,
        limit_rate_per_s=round(n_rate, 1),
        ratio_to_limit=round(d_rate / n_rate, 3),
        extra={
            "path": "SDK publish_event -> daprd (pubsub.mqtt3, QoS 1) -> Mosquitto",
            "limit": "edgecloud MQTT publisher, QoS 1, one at a time (wait for each PUBACK)",
            "native_p50_ms": round(percentile(n_lat, 50), 3),
            "native_p99_ms": round(percentile(n_lat, 99), 3),
            "native_pipelined_rate_per_s": round(piped, 1),
            "event_bytes": len(events[0]),
        },
    )
