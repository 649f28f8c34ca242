"""Both MQTT implementations (native and paho) against the real Mosquitto of the stack.

The behaviours the edge agent and the bridge rely on: QoS 1 in order, manual acks, the
persistent session redelivering exactly what was not acknowledged, no ack of a message on a
later connection, refusals with a reason, keep-alive, and reconnection after a broker restart.
"""

from __future__ import annotations

import time
import uuid

import pytest

from edgecloud.adapters.mqtt import (
    CLIENTS,
    InboundMessage,
    MqttConfig,
    Subscriber,
    make_publisher,
    make_subscriber,
)
from edgecloud.adapters.mqtt_native import NativeSubscriber
from edgecloud.core.errors import TransportError
from edgecloud.dev.stack import Infra


def _config(infra: Infra, client: str, account: str = "admin", **kw: object) -> MqttConfig:
    user, pw = infra.mqtt_account(account)
    return MqttConfig(
        host=infra.mqtt_host, port=infra.mqtt_port, username=user, password=pw,
        client=client, session_expiry_s=300, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _drain(sub: Subscriber, want: int, timeout_s: float = 20.0) -> list[InboundMessage]:
    got: list[InboundMessage] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        got.extend(sub.get_batch(want - len(got), 0.05))
    return got


def _publish(infra: Infra, client: str, topic: str, payloads: list[bytes]) -> None:
    pub = make_publisher(_config(infra, client))
    pub.start()
    try:
        pub.wait([pub.publish(topic, p) for p in payloads], 30.0)
    finally:
        pub.stop()


@pytest.mark.parametrize("client", CLIENTS)
def test_qos1_in_order_and_unacked_redelivered(stack: Infra, client: str) -> None:
    topic = f"t/{uuid.uuid4().hex[:8]}/x"
    cid = f"it-{uuid.uuid4().hex[:8]}"
    sub = make_subscriber(_config(stack, client), [topic], client_id=cid)
    sub.start()
    payloads = [f"m{i}".encode() + b"x" * (i % 300) for i in range(3000)]
    _publish(stack, client, topic, payloads)
    got: list[InboundMessage] = []
    while len(got) < 3000:
        batch = _drain(sub, 3000 - len(got))
        assert batch, "delivery stalled"
        # every 10th message is left unacknowledged (300: within the broker's in-flight window)
        sub.ack_all([m for i, m in enumerate(batch, len(got)) if i % 10])
        got.extend(batch)
    assert [m.payload for m in got] == payloads
    assert all(m.topic == topic and m.qos == 1 for m in got)
    time.sleep(0.3)  # the PUBACKs reach the broker before the disconnect
    sub.stop()

    again = make_subscriber(_config(stack, client), [topic], client_id=cid)
    again.start()
    redelivered = _drain(again, 300)
    assert [m.payload for m in redelivered] == payloads[::10]
    again.ack_all(redelivered)
    assert _drain(again, 1, timeout_s=1.0) == []  # nothing else: the acked ones are gone
    again.stop()


def test_native_never_acks_a_message_on_a_later_connection(stack: Infra) -> None:
    topic = f"t/{uuid.uuid4().hex[:8]}/x"
    sub = make_subscriber(_config(stack, "native"), [topic], client_id=f"it-{uuid.uuid4().hex[:8]}")
    assert isinstance(sub, NativeSubscriber)
    sub.start()
    _publish(stack, "native", topic, [b"one", b"two"])
    first = _drain(sub, 2)
    assert [m.payload for m in first] == [b"one", b"two"]
    conn = sub._conn
    assert conn is not None
    conn.sock.close()  # the connection breaks before the acks
    again = _drain(sub, 2)  # reconnects; the resumed session redelivers both
    assert [m.payload for m in again] == [b"one", b"two"]
    sub.ack_all(first)  # stale: must not acknowledge (the ids may name other messages)
    time.sleep(0.3)
    sub.stop()
    resumed = make_subscriber(_config(stack, "native"), [topic], client_id=sub._client_id)
    resumed.start()
    assert [m.payload for m in _drain(resumed, 2)] == [b"one", b"two"]
    resumed.ack_all(_drain(resumed, 0, 0.1))
    resumed.stop()


@pytest.mark.parametrize("client", CLIENTS)
def test_bad_password_is_refused_with_the_reason(stack: Infra, client: str) -> None:
    user, _ = stack.mqtt_account("admin")
    cfg = MqttConfig(
        host=stack.mqtt_host,
        port=stack.mqtt_port,
        username=user,
        password="wrong",
        client=client,  # type: ignore[arg-type]
    )
    sub = make_subscriber(cfg, ["t/#"], client_id=f"it-{uuid.uuid4().hex[:8]}")
    with pytest.raises(TransportError) as err:
        sub.start(wait_s=3)
    assert "not authorized" in str(err.value).lower() or "bad user name" in str(err.value).lower()


def test_native_publish_refused_by_acl_raises(stack: Infra, unique_id: str) -> None:
    device = f"dev-{unique_id}"
    stack.add_mqtt_user(device, "pw-" + unique_id)
    cfg = MqttConfig(
        host=stack.mqtt_host, port=stack.mqtt_port, username=device, password="pw-" + unique_id,
        client="native",
    )  # fmt: skip
    pub = make_publisher(cfg)
    pub.start()
    try:
        ok = pub.publish(f"devices/{device}/telemetry", b"{}")
        pub.wait([ok], 10)
        denied = pub.publish("devices/someone-else/telemetry", b"{}")
        with pytest.raises(TransportError, match="0x87"):
            pub.wait([denied], 10)
    finally:
        pub.stop()


def test_native_keepalive_keeps_an_idle_connection(stack: Infra) -> None:
    cfg = _config(stack, "native", keepalive_s=1)
    sub = make_subscriber(
        cfg, [f"t/{uuid.uuid4().hex[:8]}"], client_id=f"it-{uuid.uuid4().hex[:8]}"
    )
    assert isinstance(sub, NativeSubscriber)
    sub.start()
    epoch = sub._epoch
    time.sleep(3.5)  # the broker drops a client silent for 1.5 keep-alives
    assert sub.get_batch(10, 0.2) == []
    assert sub._epoch == epoch and sub.connected.is_set()
    sub.stop()


@pytest.mark.parametrize("client", CLIENTS)
def test_reconnects_after_broker_restart_and_loses_nothing(
    private_infra: Infra, client: str
) -> None:
    private_infra.mosquitto.start()
    topic = "t/restart"
    cid = f"it-{uuid.uuid4().hex[:8]}"
    sub = make_subscriber(_config(private_infra, client), [topic], client_id=cid)
    sub.start()
    pub = make_publisher(_config(private_infra, client))
    pub.start()
    pub.wait([pub.publish(topic, f"a{i}".encode()) for i in range(500)], 30)
    first = _drain(sub, 500)
    sub.ack_all(first[:250])
    time.sleep(0.3)
    private_infra.mosquitto.stop()
    if client == "native":  # queued while the broker is down, sent on the new connection
        infos = [pub.publish(topic, f"b{i}".encode()) for i in range(100)]
        private_infra.mosquitto.start()
    else:  # paho fails a publish made while disconnected: publish once it is back
        private_infra.mosquitto.start()
        deadline = time.monotonic() + 30
        while not pub.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        infos = [pub.publish(topic, f"b{i}".encode()) for i in range(100)]
    pub.wait(infos, 60)
    rest = _drain(sub, 350, timeout_s=60)
    payloads = {m.payload for m in rest}
    # the unacked half of the first batch comes again, and every message sent during the outage
    assert {f"a{i}".encode() for i in range(250, 500)} <= payloads
    assert {f"b{i}".encode() for i in range(100)} <= payloads
    sub.ack_all(rest)
    pub.stop()
    sub.stop()
