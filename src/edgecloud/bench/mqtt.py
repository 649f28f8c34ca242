"""``edgecloud bench mqtt``: the native MQTT client against paho, receive and acknowledge.

Each run queues ``messages`` QoS 1 messages of ``payload_bytes`` for a persistent session on a
private Mosquitto, then one subscriber drains them with ``get_batch`` and ``ack_all`` (batches
of 1,000, as the bridge does), once with the native client and once with paho, in the same run.
The rate is messages over wall time; ``extra`` has the CPU per message of the receiving process
(``time.process_time``: both implementations' threads included). The limit is paho's loop.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from edgecloud.adapters.mqtt import MqttConfig, make_publisher, make_subscriber
from edgecloud.bench.common import BenchResult
from edgecloud.dev.base import Ports
from edgecloud.dev.stack import Infra


def _config(infra: Infra, client: str) -> MqttConfig:
    user, pw = infra.mqtt_account("admin")
    return MqttConfig(
        host=infra.mqtt_host, port=infra.mqtt_port, username=user, password=pw,
        client=client, session_expiry_s=600,  # type: ignore[arg-type]
    )  # fmt: skip


def drain(infra: Infra, client: str, messages: int, payload: bytes) -> tuple[float, float, int]:
    """(messages/s wall, CPU us per message, messages received) for one implementation."""
    cfg = _config(infra, client)
    topic = f"bench/{uuid.uuid4().hex[:8]}/m"
    cid = f"bench-mqtt-{uuid.uuid4().hex[:8]}"
    first = make_subscriber(cfg, [topic], client_id=cid)
    first.start()  # the session and its subscription exist before anything is published
    first.stop()
    pub = make_publisher(_config(infra, "native"))
    pub.start()
    for start in range(0, messages, 10_000):
        n = min(10_000, messages - start)
        pub.wait([pub.publish(topic, payload) for _ in range(n)], 300)
    pub.stop()
    sub = make_subscriber(cfg, [topic], client_id=cid)
    got = 0
    c0, t0 = time.process_time(), time.monotonic()
    sub.start()
    idle_since = time.monotonic()
    while got < messages and time.monotonic() - idle_since < 30:
        batch = sub.get_batch(1000, 0.05)
        if batch:
            sub.ack_all(batch)
            got += len(batch)
            idle_since = time.monotonic()
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    sub.stop()
    return got / wall, cpu / max(got, 1) * 1e6, got


def run(
    messages: int, runs: int, payload_bytes: int, say: Callable[[str], None] = print
) -> BenchResult:
    payload = b"x" * payload_bytes
    with tempfile.TemporaryDirectory(prefix="edgecloud-bench-mqtt-") as tmp:
        infra = Infra(Path(tmp) / "state", Ports.free())
        say(f"starting a private Mosquitto in {tmp}")
        infra.mosquitto.start()
        try:
            results: list[BenchResult] = []
            cpu_native: list[float] = []
            cpu_paho: list[float] = []
            for i in range(runs):
                p_rate, p_cpu, p_got = drain(infra, "paho", messages, payload)
                n_rate, n_cpu, n_got = drain(infra, "native", messages, payload)
                say(
                    f"run {i + 1}: native {n_rate:,.0f} msg/s ({n_cpu:.1f} us CPU/msg), "
                    f"paho {p_rate:,.0f} msg/s ({p_cpu:.1f} us CPU/msg)"
                )
                cpu_native.append(n_cpu)
                cpu_paho.append(p_cpu)
                results.append(
                    BenchResult(
                        name="mqtt",
                        messages=messages,
                        seconds=round(n_got / n_rate, 3),
                        rate_per_s=round(n_rate, 1),
                        p50_ms=0.0,
                        p99_ms=0.0,
                        lost=messages - min(n_got, p_got),
                        duplicates=0,
                        limit_rate_per_s=round(p_rate, 1),
                        ratio_to_limit=round(n_rate / p_rate, 3),
                    )
                )
            return BenchResult.from_runs(
                "mqtt",
                results,
                cpu_us_per_msg_native=round(statistics.median(cpu_native), 2),
                cpu_us_per_msg_paho=round(statistics.median(cpu_paho), 2),
                payload_bytes=payload_bytes,
                limit="paho receive loop (PahoSubscriber, get_batch + ack_all), same broker",
            )
        finally:
            infra.stop()
