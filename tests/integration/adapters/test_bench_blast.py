"""The benchmarks' load generator (``bench/blast.py``) against the real Mosquitto of the stack:
every message arrives once, whole and in order, with its stamp; packet ids wrap past 65,535;
pacing holds; a refused publish fails the run."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from edgecloud.adapters.mqtt import InboundMessage, MqttConfig, Subscriber, make_subscriber
from edgecloud.bench.blast import blast, prebuild
from edgecloud.core.errors import TransportError
from edgecloud.dev.stack import Infra


def _config(infra: Infra, account: str = "admin") -> MqttConfig:
    user, pw = infra.mqtt_account(account)
    return MqttConfig(host=infra.mqtt_host, port=infra.mqtt_port, username=user, password=pw,
                      session_expiry_s=300)  # fmt: skip


def _drain(sub: Subscriber, want: int, timeout_s: float = 60.0) -> list[InboundMessage]:
    got: list[InboundMessage] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        batch = sub.get_batch(5000, 0.05)
        sub.ack_all(batch)
        got.extend(batch)
    return got


def _messages(topics: list[str], n: int) -> list[tuple[str, bytes, bytes]]:
    return [(topics[i % len(topics)], b'{"i":%d,"pad":"%s","t":' % (i, b"x" * (i % 50)), b"}")
            for i in range(n)]  # fmt: skip


def test_every_message_arrives_once_in_order_past_the_packet_id_wrap(stack: Infra) -> None:
    base = f"t/{uuid.uuid4().hex[:8]}"
    topics = [f"{base}/a", f"{base}/b"]
    sub = make_subscriber(_config(stack), [f"{base}/+"], client_id=f"it-{uuid.uuid4().hex[:8]}")
    sub.start()
    try:
        n = 70_000  # more than the 65,535 packet ids: they are reused
        packets = prebuild(_messages(topics, n), lambda: b"%.6f" % time.time())
        t0 = time.time()
        assert blast(_config(stack), packets) == n
        got = _drain(sub, n)
    finally:
        sub.stop()
    assert len(got) == n
    bodies = [json.loads(m.payload) for m in got]
    assert [b["i"] for b in bodies] == list(range(n))  # one publisher: the broker keeps order
    assert all(b["pad"] == "x" * (b["i"] % 50) for b in bodies)
    assert [m.topic for m in got] == [topics[i % 2] for i in range(n)]
    stamps = [b["t"] for b in bodies]
    assert stamps == sorted(stamps) and t0 <= stamps[0] <= stamps[-1] <= time.time()


def test_paced_run_spreads_its_stamps(stack: Infra) -> None:
    topic = f"t/{uuid.uuid4().hex[:8]}/p"
    sub = make_subscriber(_config(stack), [topic], client_id=f"it-{uuid.uuid4().hex[:8]}")
    sub.start()
    try:
        packets = prebuild(_messages([topic], 400), lambda: b"%.6f" % time.time())
        assert blast(_config(stack), packets, rate=1000.0) == 400
        got = _drain(sub, 400)
    finally:
        sub.stop()
    stamps = [json.loads(m.payload)["t"] for m in got]
    assert len(stamps) == 400
    # at 1,000/s the 400th message is due 0.399 s after the first; unpaced would take ~10 ms
    assert stamps[-1] - stamps[0] >= 0.35
    assert len(set(stamps)) > 100  # stamped as they went, not once for all


def test_refused_publish_fails_the_run(stack: Infra, unique_id: str) -> None:
    device = f"dev-{unique_id}"
    stack.add_mqtt_user(device, "pw-" + unique_id)
    cfg = MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port, username=device,
                     password="pw-" + unique_id)  # fmt: skip
    ok = [(f"devices/{device}/telemetry", b'{"t":', b"}")] * 3
    assert blast(cfg, prebuild(ok, lambda: b"%.6f" % time.time())) == 3
    denied = [("devices/someone-else/telemetry", b'{"t":', b"}")]
    with pytest.raises(TransportError, match="0x87"):
        blast(cfg, prebuild(denied, lambda: b"%.6f" % time.time()))


def test_a_stamp_of_another_length_is_refused(stack: Infra) -> None:
    lengths = iter([3, 4])
    packets = prebuild([("t/x", b"", b"")], lambda: b"x" * next(lengths))
    with pytest.raises(ValueError, match="not 3 bytes"):
        blast(_config(stack), packets)
