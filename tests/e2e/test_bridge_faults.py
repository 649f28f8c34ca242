"""Fault tests of the sync bridge on real Mosquitto and Kafka, counted with a real consumer.

Every test runs ``edgecloud bridge run`` as a process, publishes a deterministic stream
(``edgecloud.testing.tally``), injects a fault, then reads the readings topic back: the unique
event ids in Kafka must equal the events published, first occurrences must come in per-key
order, and duplicates (at-least-once) are counted and printed. Services that are killed or cut
off are private instances (own state dir, free ports), never the shared test stack.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgecloud.adapters.mqtt import MqttConfig, make_publisher
from edgecloud.bench.bridge import BridgeProc, bridge_env, infra_mqtt, publish, tally
from edgecloud.core.errors import TransportError
from edgecloud.core.kafka import KafkaConnection
from edgecloud.core.topics import events_topic
from edgecloud.dev import process
from edgecloud.dev.kafka import KafkaService
from edgecloud.dev.stack import Infra, Ports
from edgecloud.testing.tally import expected_ids, reading_payload, stream

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def admin(infra: Infra) -> str:
    user, pw = infra.mqtt_account("admin")
    return f"mqtt://{user}:{pw}@{infra.mqtt_host}:{infra.mqtt_port}"


def check(
    kafka: KafkaConnection, prefix: str, ids: set[str], what: str, timeout: float = 180.0
) -> None:
    t = tally(kafka, prefix, ids, timeout_s=timeout)
    summary = t.summary(ids)
    print(f"\n[{what}] {json.dumps(summary)}")
    assert summary["lost"] == 0, summary
    assert summary["unique"] == len(ids)
    assert summary["order_violations"] == 0, summary


@pytest.fixture
def bridge_factory(tmp_path: Path) -> Iterator[list[BridgeProc]]:
    made: list[BridgeProc] = []
    yield made
    for b in made:
        b.stop()


def make_bridge(
    made: list[BridgeProc],
    tmp_path: Path,
    mqtt: tuple[str, str, str],
    kafka: KafkaConnection,
    prefix: str,
    node: str,
    **more: str,
) -> BridgeProc:
    env = bridge_env(mqtt, kafka, prefix, node, tmp_path / "spool", process.free_port(), **more)
    b = BridgeProc(env, tmp_path / "bridge.log")
    made.append(b)
    b.start()
    b.wait_ready()
    return b


def test_kill9_bridge_repeatedly_during_50k_stream(
    stack: Infra,
    kafka_prefix: str,
    unique_id: str,
    tmp_path: Path,
    bridge_factory: list[BridgeProc],
) -> None:
    node = f"k{unique_id}"
    b = make_bridge(
        bridge_factory,
        tmp_path,
        infra_mqtt(stack),
        stack.kafka_client("bridge"),
        kafka_prefix,
        node,
    )
    devices, per = 100, 500  # 50,000 events
    join = publish(admin(stack), node, devices, per, rate=6000.0, processes=2, tag="k")
    time.sleep(2.5)
    kills = 0
    for _ in range(5):
        time.sleep(1.2)
        b.kill9()
        kills += 1
        b.start()
        b.wait_ready()
    assert join() == devices * per
    check(stack.kafka_client(), kafka_prefix, expected_ids(devices, per, "k"), f"kill -9 x{kills}")
    recovered = [
        json.loads(x)
        for x in b.log_path.read_text().splitlines()
        if x.startswith("{") and "spool recovered" in x
    ]
    assert len(recovered) == kills + 1


def test_kafka_killed_60s_mid_stream(
    stack: Infra,
    private_infra: Infra,
    unique_id: str,
    tmp_path: Path,
    bridge_factory: list[BridgeProc],
) -> None:
    private_infra.kafka.start()
    node, prefix = f"o{unique_id}", f"t{unique_id}."
    private_infra.kafka_grant(prefix)
    b = make_bridge(
        bridge_factory,
        tmp_path,
        infra_mqtt(stack),
        private_infra.kafka_client("bridge"),
        prefix,
        node,
    )
    devices, per = 100, 800  # 80,000 events at 1,000/s: the stream outlives the outage
    join = publish(admin(stack), node, devices, per, rate=1000.0, processes=1, tag="o")
    time.sleep(8)
    private_infra.kafka.kill()
    down = time.monotonic()
    time.sleep(30)
    mid = b.health() or {}
    time.sleep(60 - (time.monotonic() - down))
    private_infra.kafka.start()
    print(
        f"\n[kafka outage] {time.monotonic() - down:.1f} s; during it: "
        f"spool_depth={mid.get('spool_depth')} kafka_up={mid.get('kafka_up')}"
    )
    assert mid.get("spool_depth", 0) > 10_000  # accepted into the spool meanwhile
    assert join() == devices * per
    check(
        private_infra.kafka_client(),
        prefix,
        expected_ids(devices, per, "o"),
        "kafka killed 60 s",
    )


def _publish_retrying(url: str, node: str, items: list[tuple[str, int]], rate: float) -> None:
    """Publish in chunks, waiting for PUBACKs; a chunk whose acks fail is sent again."""
    pub = make_publisher(MqttConfig.from_url(url))
    pub.start()
    topic = events_topic(node, "reading")
    t0 = time.monotonic()
    for i in range(0, len(items), 200):
        chunk = items[i : i + 200]
        while True:
            try:
                infos = [pub.publish(topic, reading_payload(node, d, s)) for d, s in chunk]
                pub.wait(infos, timeout_s=5)
                break
            except TransportError:
                time.sleep(0.5)
        delay = t0 + (i + 200) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    pub.stop()


def test_mosquitto_restart_mid_stream(
    stack: Infra,
    private_infra: Infra,
    kafka_prefix: str,
    unique_id: str,
    tmp_path: Path,
    bridge_factory: list[BridgeProc],
) -> None:
    private_infra.mosquitto.start()
    node = f"m{unique_id}"
    make_bridge(
        bridge_factory,
        tmp_path,
        infra_mqtt(private_infra),
        stack.kafka_client("bridge"),
        kafka_prefix,
        node,
    )
    items = list(stream(50, 400, "m"))  # 20,000 events at 2,000/s
    t = threading.Thread(target=_publish_retrying, args=(admin(private_infra), node, items, 2000))
    t.start()
    time.sleep(4)
    private_infra.mosquitto.stop()
    time.sleep(2)
    private_infra.mosquitto.start()
    t.join(120)
    assert not t.is_alive()
    check(stack.kafka_client(), kafka_prefix, expected_ids(50, 400, "m"), "mosquitto restart")


class NetnsKafka(KafkaService):
    """A Kafka in its own network namespace, reachable only over a veth pair."""

    def __init__(self, state_dir: Path, ports: Ports, netns: str, address: str) -> None:
        super().__init__(state_dir, ports)
        self.netns, self.address = netns, address

    @property
    def bootstrap(self) -> str:
        return f"{self.address}:{self.port}"

    def prepare(self) -> None:
        super().prepare()
        conf = self.home / "server.properties"
        text = conf.read_text().replace(f"127.0.0.1:{self.port}", self.bootstrap)
        conf.write_text(text)

    def argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *super().argv()]

    def healthy(self) -> bool:
        from edgecloud.adapters.kafka_admin import metadata_ready

        return process.port_open(self.address, self.port) and metadata_ready(self.client())


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def netns(unique_id: str) -> Iterator[tuple[str, str, str]]:
    """(namespace, host-side veth, namespace address); removed afterwards."""
    ns, host_if, ns_if = f"ecb{unique_id}", f"vh{unique_id}", f"vn{unique_id}"
    octet = int(unique_id[:2], 16)
    try:
        ip("netns", "add", ns)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", ns)
        ip("addr", "add", f"10.231.{octet}.1/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("netns", "exec", ns, "ip", "addr", "add", f"10.231.{octet}.2/30", "dev", ns_if)
        ip("netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns, host_if, f"10.231.{octet}.2"
    finally:
        subprocess.run(["ip", "link", "del", host_if], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def test_kafka_link_cut_and_restored(
    stack: Infra,
    netns: tuple[str, str, str],
    unique_id: str,
    tmp_path: Path,
    bridge_factory: list[BridgeProc],
) -> None:
    ns, host_if, address = netns
    kafka = NetnsKafka(tmp_path / "kstate", Ports.free(), ns, address)
    kafka.start()
    try:
        node, prefix = f"c{unique_id}", f"t{unique_id}."
        kafka.credentials.record(prefix, granted=True)
        kafka.apply_grants()
        bridge = kafka.client("bridge")
        b = make_bridge(bridge_factory, tmp_path, infra_mqtt(stack), bridge, prefix, node)
        devices, per = 100, 300  # 30,000 events at 1,500/s
        join = publish(admin(stack), node, devices, per, rate=1500.0, processes=1, tag="c")
        time.sleep(6)
        ip("link", "set", host_if, "down")  # silent: no RST, packets go nowhere
        time.sleep(20)
        mid = b.health() or {}
        ip("link", "set", host_if, "up")
        print(f"\n[link cut] 20 s; during it spool_depth={mid.get('spool_depth')}")
        assert mid.get("spool_depth", 0) > 5000
        assert join() == devices * per
        check(kafka.client(), prefix, expected_ids(devices, per, "c"), "link cut 20 s")
    finally:
        for b in bridge_factory:
            b.stop()
        kafka.stop()


def test_spool_budget_exhausted_backpressure_then_recovery(
    stack: Infra,
    private_infra: Infra,
    unique_id: str,
    tmp_path: Path,
    bridge_factory: list[BridgeProc],
) -> None:
    node, prefix = f"s{unique_id}", f"t{unique_id}."
    private_infra.kafka_grant(prefix)  # recorded: written when Kafka starts
    # Kafka is not started yet: its port is free, the bridge can only spool.
    b = make_bridge(
        bridge_factory,
        tmp_path,
        infra_mqtt(stack),
        private_infra.kafka_client("bridge"),
        prefix,
        node,
        spool_max_bytes=str(1_000_000),
    )
    devices, per = 100, 200  # 20,000 events (~6 MB of records): the 1 MB budget fills
    assert publish(admin(stack), node, devices, per, rate=5000.0, processes=1, tag="s")() == 20_000
    time.sleep(2)
    h = b.health() or {}
    shown = {k: h.get(k) for k in ("accepting", "spool_bytes", "spool_depth")}
    print(f"\n[spool budget] while full: {json.dumps(shown)}")
    assert h["accepting"] is False
    assert 1_000_000 <= h["spool_bytes"] < 2_000_000
    assert h["spool_depth"] < 20_000  # the rest waits, unacknowledged, at the broker
    private_infra.kafka.start()
    check(private_infra.kafka_client(), prefix, expected_ids(devices, per, "s"), "spool budget")
    assert (b.health() or {}).get("accepting") is True
