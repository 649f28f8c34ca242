"""MQTT QoS 1 through the stack's broker and its ACLs, with paho-mqtt (MQTT v5).

Mosquitto does not forward an unauthorised publish; under v5 it answers the PUBLISH with a
PUBACK whose reason code is "not authorised" (135). A subscriber must see the allowed message
and never the refused one: the device publishes the refused message first and an allowed one
after it, so once the allowed one has arrived the refused one can no longer come.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgecloud.dev.stack import Infra

NOT_AUTHORIZED = 135


def accepted(reason_code: int) -> bool:
    """PUBACK success codes are below 128 (16: accepted, no matching subscribers)."""
    return reason_code < 128


class Client:
    """A small paho v5 client recording PUBACK reason codes and received messages."""

    def __init__(self, infra: Infra, username: str, password: str, client_id: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.pubacks: dict[int, int] = {}
        self.acked = threading.Condition()
        self.connected = threading.Event()
        self.connect_rc: int | None = None
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.connect(infra.mqtt_host, infra.mqtt_port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.connect_rc = rc.value
        self.connected.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Properties) -> None:
        with self.acked:
            self.pubacks[mid] = rc.value
            self.acked.notify_all()

    def wait_connected(self) -> int:
        assert self.connected.wait(10), "no CONNACK"
        assert self.connect_rc is not None
        return self.connect_rc

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish QoS 1 and return the PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.pubacks, 10), "no PUBACK"
            return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> None:
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(10), "no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # paho keeps its wake-up socket pair open until garbage collection, which pytest
        # (warnings are errors) reports as an unclosed socket; close it now.
        self.client._reset_sockets()


@pytest.fixture
def clients(stack: Infra) -> Iterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.close()


def connect(stack: Infra, clients: list[Client], user: str, password: str, cid: str) -> Client:
    client = Client(stack, user, password, cid)
    clients.append(client)
    assert client.wait_connected() == 0
    return client


def test_device_round_trip_and_acl_refusal(
    stack: Infra, clients: list[Client], unique_id: str
) -> None:
    if not stack.mqtt_managed:
        pytest.skip("external broker: device accounts are not managed here")
    device, other = f"dev-{unique_id}", f"other-{unique_id}"
    stack.add_mqtt_user(device, f"pw-{unique_id}")
    watcher = connect(stack, clients, *stack.mqtt_account("admin"), f"watch-{unique_id}")
    watcher.subscribe(f"devices/{other}/telemetry")
    watcher.subscribe(f"devices/{device}/telemetry")
    dev = connect(stack, clients, device, f"pw-{unique_id}", device)

    assert dev.publish(f"devices/{other}/telemetry", b"forged") == NOT_AUTHORIZED
    assert accepted(dev.publish(f"devices/{device}/telemetry", b'{"seq": 1}'))

    received = watcher.messages.get(timeout=10)
    assert (received.topic, received.payload, received.qos) == (
        f"devices/{device}/telemetry",
        b'{"seq": 1}',
        1,
    )
    assert watcher.messages.empty(), "the refused publish reached a subscriber"


def test_wrong_password_is_refused(stack: Infra, unique_id: str) -> None:
    client = Client(stack, "admin", "not-the-password", f"bad-{unique_id}")
    try:
        assert client.wait_connected() != 0
    finally:
        client.close()


def test_service_accounts_follow_the_design(
    stack: Infra, clients: list[Client], unique_id: str
) -> None:
    if not stack.mqtt_managed:
        pytest.skip("external broker: accounts are not managed here")
    node, device = f"node-{unique_id}", f"d-{unique_id}"
    bridge = connect(stack, clients, *stack.mqtt_account("bridge"), f"bridge-{unique_id}")
    bridge.subscribe(f"edgecloud/{node}/events/#")
    agent = connect(stack, clients, *stack.mqtt_account("edge-agent"), f"agent-{unique_id}")
    simulator = connect(stack, clients, *stack.mqtt_account("simulator"), f"sim-{unique_id}")

    assert accepted(simulator.publish(f"devices/{device}/telemetry", b"{}"))
    assert simulator.publish(f"edgecloud/{node}/events/reading", b"{}") == NOT_AUTHORIZED
    assert bridge.publish(f"edgecloud/{node}/events/reading", b"{}") == NOT_AUTHORIZED
    assert accepted(agent.publish(f"edgecloud/{node}/events/reading", b'{"ok": 1}'))

    received = bridge.messages.get(timeout=10)
    assert received.payload == b'{"ok": 1}'
    assert bridge.messages.empty()
