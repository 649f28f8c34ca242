"""``edgecloud simulate`` against the real Mosquitto: every reading arrives, valid, in order."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from edgecloud.adapters.mqtt import MqttConfig, Subscriber, make_publisher, make_subscriber
from edgecloud.core.readings import parse_reading
from edgecloud.sim.publisher import SimulationConfig, run_simulation

pytestmark = pytest.mark.integration


def collect(
    sub: Subscriber, prefix: str, expected: int, timeout_s: float = 20.0
) -> list[tuple[str, bytes]]:
    """This test's readings (other tests may publish on the shared broker meanwhile)."""
    got: list[tuple[str, bytes]] = []

    def take(wait_s: float) -> None:
        for m in sub.get_batch(1000, wait_s):
            if m.topic.startswith(f"devices/{prefix}-"):
                got.append((m.topic, m.payload))
            m.ack()

    deadline = time.monotonic() + timeout_s
    while len(got) < expected and time.monotonic() < deadline:
        take(0.2)
    take(0.5)  # anything beyond the expected count would show up here
    return got


def subscriber(stack: object, prefix: str) -> Subscriber:
    user, pw = stack.mqtt_account("admin")  # type: ignore[attr-defined]
    cfg = MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port, username=user, password=pw)  # type: ignore[attr-defined]
    return make_subscriber(cfg, ["devices/+/telemetry"], client_id=f"sim-test-{prefix}")


def check_readings(got: list[tuple[str, bytes]], prefix: str, devices: int) -> None:
    seqs: dict[str, list[int]] = defaultdict(list)
    for topic, data in got:
        r = parse_reading(topic, data)  # raises on anything not in the contract
        assert r.device_id.startswith(prefix)
        assert set(r.values) == {"temperature", "vibration_rms", "pressure", "current"}
        seqs[r.device_id].append(r.seq)
    assert len(seqs) == devices
    for s in seqs.values():
        assert s == sorted(s) and len(set(s)) == len(s)


def test_simulation_publishes_every_reading(stack: object, unique_id: str) -> None:
    prefix = f"s{unique_id}"
    sub = subscriber(stack, prefix)
    sub.start()
    user, pw = stack.mqtt_account("simulator")  # type: ignore[attr-defined]
    pub = make_publisher(
        MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port, username=user, password=pw)
    )  # type: ignore[attr-defined]
    pub.start()
    cfg = SimulationConfig(
        devices=5, rate_hz=20, duration_s=1.0, anomaly_rate=0.2, device_prefix=prefix, seed=3
    )
    stats = run_simulation(cfg, pub)
    pub.stop()
    assert stats.published == stats.acked == 5 * 20
    got = collect(sub, prefix, stats.published)
    sub.stop()
    assert len(got) == stats.published
    check_readings(got, prefix, 5)


def test_cli_simulate(stack: object, unique_id: str) -> None:
    prefix = f"c{unique_id}"
    sub = subscriber(stack, prefix)
    sub.start()
    user, pw = stack.mqtt_account("simulator")  # type: ignore[attr-defined]
    exe = Path(sys.executable).with_name("edgecloud")
    proc = subprocess.run(
        [str(exe), "simulate", "--devices", "3", "--rate", "10", "--duration", "1",
         "--prefix", prefix, "--mqtt-url", stack.mqtt_url,  # type: ignore[attr-defined]
         "--username", user, "--password", pw, "--quiet"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "published 30 readings from 3 devices" in proc.stdout
    assert "30 acknowledged" in proc.stdout
    got = collect(sub, prefix, 30)
    sub.stop()
    assert len(got) == 30
    check_readings(got, prefix, 3)


def test_cli_bad_password_fails_cleanly(stack: object, unique_id: str) -> None:
    exe = Path(sys.executable).with_name("edgecloud")
    proc = subprocess.run(
        [str(exe), "simulate", "--duration", "1", "--mqtt-url", stack.mqtt_url,  # type: ignore[attr-defined]
         "--username", "simulator", "--password", "wrong", "--quiet"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "edgecloud: error:" in proc.stderr and "Traceback" not in proc.stderr
