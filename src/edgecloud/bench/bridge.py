"""``edgecloud bench bridge``: MQTT QoS 1 in, idempotent acks=all Kafka out, nothing lost.

Runs on a private Mosquitto + Kafka (own state dir, free ports) so that Kafka can be stopped for
the drain phase. Phases, each with the bridge as a real ``edgecloud bridge run`` process:

- limit: a paho receive-only loop (the MQTT adapter's subscriber, acking at once) receiving the
  same unpaced stream (same shape) from the same publisher processes: ``limit_rate_per_s``, in
  events/s;
- throughput: ``events`` 200-byte events, unpaced, in the shape the edge publishes them
  (``shape="arrays"``: JSON arrays of ``EVENTS_PER_MESSAGE`` events, as ``edge/outbox.py``
  batches them) or one event per MQTT message (``shape="single"``); the rate runs from the
  first publish to the last Kafka append (topics use LogAppendTime); lost / duplicates are
  counted from what a consumer reads back; ``extra.bridge_cpu_us_per_event`` is the bridge
  process's CPU over the run per event (steadier than the rate on a shared machine). In an array
  only the first event carries the publish time (the others ``pub_ns`` 0), so latencies are per
  message;
- latency: ``rate`` events/s (default 5,000) for ``latency_s``; p50/p99 of Kafka append time
  minus publish time (the same clock);
- drain: ingest at ``drain_rate`` while Kafka is stopped for ``outage_s``, keep ingesting after
  it returns and measure the delivery rate until the spool is empty: ``drain_ratio``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from edgecloud.adapters.kafka import ensure_topics, read_topics
from edgecloud.adapters.mqtt import MqttConfig, PahoSubscriber, make_publisher
from edgecloud.bench.blast import blast
from edgecloud.bench.blast import prebuild as build_packets
from edgecloud.bench.common import BenchResult, paced, percentile
from edgecloud.bench.edge import cpu_seconds
from edgecloud.core.gctune import tune_gc
from edgecloud.core.kafka import KafkaConnection
from edgecloud.core.topics import events_topic, kafka_dead_letter_topic, kafka_topic
from edgecloud.dev import process
from edgecloud.dev.stack import Infra, Ports
from edgecloud.testing.tally import Tally, device_name, expected_ids, reading_payload

TOPIC_TYPES = ("reading", "heartbeat", "model_status")
SHAPES = ("arrays", "single")
EVENTS_PER_MESSAGE = 200  # the edge outbox's default events_per_message (edge/outbox.py)


def all_topics(prefix: str) -> list[str]:
    return [*(kafka_topic(t, prefix) for t in TOPIC_TYPES), kafka_dead_letter_topic(prefix)]


# --- publishers (separate processes: one paho client tops out near 10k msg/s) ---------------
_PLACEHOLDER_NS = 10**18  # as many digits as time.time_ns() (until the year 2286)
_NS_DIGITS = len(str(_PLACEHOLDER_NS))


_MARKER = b'"pub_ns":%d' % _PLACEHOLDER_NS


def _payload_parts(
    node: str, devices: list[int], per_device: int, tag: str, per_message: int = 1
) -> Iterator[tuple[bytes, bytes]]:
    """Each payload of a publisher, in publish order, split around its publish time (filled in
    when it is sent). ``per_message`` > 1: compact JSON arrays of that many events (the last
    one shorter), as the edge outbox writes them; the first event of each carries the time."""
    batch: list[bytes] = []
    for seq in range(per_device):
        for d in devices:
            raw = reading_payload(node, device_name(d, tag), seq, _PLACEHOLDER_NS)
            if per_message == 1:
                i = raw.index(_MARKER) + len(_MARKER) - _NS_DIGITS
                yield raw[:i], raw[i + _NS_DIGITS :]
                continue
            batch.append(raw)
            if len(batch) == per_message:
                yield _array_parts(batch)
                batch = []
    if batch:
        yield _array_parts(batch)


def _array_parts(events: list[bytes]) -> tuple[bytes, bytes]:
    first = b"[" + events[0]
    i = first.index(_MARKER) + len(_MARKER) - _NS_DIGITS
    rest = b"".join([b"," + e.replace(_MARKER, b'"pub_ns":0') for e in events[1:]])
    return first[:i], first[i + _NS_DIGITS :] + rest + b"]"


def _publish_worker(
    url: str,
    node: str,
    devices: list[int],
    per_device: int,
    rate: float,
    start_at: float,
    tag: str,
    topic: str,
    prebuild: bool,
    per_message: int = 1,
) -> int:
    parts = _payload_parts(node, devices, per_device, tag, per_message)
    config = MqttConfig.from_url(url)
    if prebuild:
        # the benchmarks: making an event costs more CPU than publishing it, and the load
        # generator shares the machine with what it measures, so every packet is made before
        # the start and sent by the lean single-thread publisher (bench/blast.py)
        packets = build_packets([(topic, h, t) for h, t in parts], lambda: b"%d" % time.time_ns())
        tune_gc()  # this process is the load generator's own; see bench/edge.py
        while time.time() < start_at:
            time.sleep(0.001)
        return blast(config, packets, rate=rate or None, timeout_s=600.0)
    # the fault tests: the client's own publisher, which reconnects and resends on its own
    pub = make_publisher(config)
    pub.start()
    total = len(devices) * per_device
    while time.time() < start_at:
        time.sleep(0.001)
    infos = []
    for head, tail in paced(parts, rate):
        infos.append(pub.publish(topic, b"".join((head, b"%d" % time.time_ns(), tail))))
        if len(infos) >= 5000:
            pub.wait(infos, timeout_s=600)
            infos = []
    pub.wait(infos, timeout_s=600)
    pub.stop()
    return total


def publish(
    url: str,
    node: str,
    devices: int,
    per_device: int,
    *,
    rate: float = 0.0,
    processes: int = 2,
    tag: str = "",
    topic: str | None = None,
    prebuild: bool = False,
    per_message: int = 1,
) -> Callable[[], int]:
    """Start publishing in ``processes`` processes; returns a join() giving the count sent
    (events without ``prebuild``, MQTT messages with it). ``rate`` is in events/s;
    ``per_message`` events go in one message (a JSON array when above 1).

    ``topic`` defaults to the node's reading events topic (what the bridge subscribes to).
    Publishing starts 1.5 s from now; with ``prebuild`` (the benchmarks) the payloads are made
    first and the start moves back by the time that takes (about 40 us a payload).
    """
    topic = topic or events_topic(node, "reading")
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(processes)
    build_s = devices * per_device / processes * 40e-6 if prebuild else 0.0
    start_at = time.time() + 1.5 + build_s
    shares = [list(range(i, devices, processes)) for i in range(processes)]
    each_rate = rate / processes / per_message if rate > 0 else 0.0
    results = [
        pool.apply_async(
            _publish_worker,
            (url, node, s, per_device, each_rate, start_at, tag, topic, prebuild, per_message),
        )
        for s in shares
        if s
    ]
    pool.close()

    def join() -> int:
        try:
            return sum(r.get(timeout=3600) for r in results)
        finally:
            pool.join()

    return join


# --- the bridge as a real process ------------------------------------------------------------
@dataclass
class BridgeProc:
    env: dict[str, str]
    log_path: Path
    pid: int | None = None
    netns: str | None = None

    def start(self) -> int:
        argv = [sys.executable, "-c", "from edgecloud.cli import main; main()", "bridge", "run"]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.pid = process.spawn(argv, self.log_path, env={**os.environ, **self.env})
        return self.pid

    def health(self) -> dict[str, Any] | None:
        url = f"http://{self.env.get('EDGECLOUD_BRIDGE_HTTP_HOST', '127.0.0.1')}:"
        url += f"{self.env['EDGECLOUD_BRIDGE_HTTP_PORT']}/healthz"
        try:
            with urlopen(url, timeout=2) as resp:
                data: dict[str, Any] = json.loads(resp.read())
                return data
        except OSError as exc:
            body = getattr(exc, "read", None)
            if callable(body):
                try:
                    data = json.loads(body())
                    return data
                except (ValueError, OSError):
                    return None
            return None

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ok() -> bool:
            h = self.health()
            return bool(h and h.get("mqtt_connected"))

        def died() -> str | None:
            if self.pid is not None and not process.pid_alive(self.pid):
                return "bridge exited:\n" + process.tail(self.log_path)
            return None

        process.wait_until(ok, timeout, "bridge", abort=died)

    def kill9(self) -> None:
        if self.pid is not None:
            process.kill(self.pid)
            process.wait_until(lambda: not process.pid_alive(self.pid or 0), 10, "bridge kill")
            self.pid = None

    def stop(self) -> None:
        if self.pid is not None:
            process.terminate(self.pid, signal.SIGTERM, 20.0)
            self.pid = None

    def wait_drained(self, timeout: float = 120.0) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def empty() -> bool:
            nonlocal last
            last = self.health() or {}
            return last.get("spool_depth") == 0 and bool(last)

        process.wait_until(empty, timeout, "bridge spool drain", interval=0.1)
        return last


def bridge_env(
    mqtt: tuple[str, str, str],
    kafka: KafkaConnection,
    prefix: str,
    node: str,
    spool: Path,
    http_port: int,
    **more: str,
) -> dict[str, str]:
    """Environment of a bridge process; ``mqtt`` = (url, username, password)."""
    url, user, pw = mqtt
    env = {
        "EDGECLOUD_NODE_ID": node,
        "EDGECLOUD_MQTT_URL": url,
        "EDGECLOUD_MQTT_USERNAME": user,
        "EDGECLOUD_MQTT_PASSWORD": pw,
        "EDGECLOUD_MQTT_CLIENT_ID": f"bridge-{node}",
        "EDGECLOUD_KAFKA_TOPIC_PREFIX": prefix,
        "EDGECLOUD_SPOOL_DIR": str(spool),
        "EDGECLOUD_BRIDGE_HTTP_PORT": str(http_port),
        "EDGECLOUD_HEARTBEAT_INTERVAL_S": "5",
        "EDGECLOUD_LOG_LEVEL": "INFO",
    }
    env.update(kafka.env())
    env.update({f"EDGECLOUD_{k.upper()}": v for k, v in more.items()})
    return env


def infra_mqtt(infra: Infra, account: str = "bridge") -> tuple[str, str, str]:
    return (infra.mqtt_url, *infra.mqtt_account(account))


def admin_url(infra: Infra) -> str:
    user, pw = infra.mqtt_account("admin")
    return f"mqtt://{user}:{pw}@{infra.mqtt_host}:{infra.mqtt_port}"


def tally(
    infra: Infra | KafkaConnection, prefix: str, expected: set[str], timeout_s: float = 120.0
) -> Tally:
    """Read the readings topic until every expected event is there (or ``timeout_s``)."""
    t = Tally(expected=expected)
    read_topics(
        infra if isinstance(infra, KafkaConnection) else infra.kafka_client("bench"),
        [kafka_topic("reading", prefix)],
        idle_s=timeout_s,
        timeout_s=timeout_s,
        on_message=lambda m: t.add(m.key, m.value, m.timestamp_ms),
        until=t.complete,
    )
    return t


def new_tag() -> str:
    return uuid.uuid4().hex[:6] + "-"


# --- phases ----------------------------------------------------------------------------------
def paho_limit(infra: Infra, events: int, publishers: int, per_message: int = 1) -> float:
    """Receive rate (events/s) of the adapter's subscriber acking at once (no spool, no
    Kafka), of ``events`` in messages of ``per_message`` events."""
    node = f"lim{uuid.uuid4().hex[:6]}"
    user, pw = infra.mqtt_account("admin")
    cfg = MqttConfig.from_url(infra.mqtt_url, username=user, password=pw)
    topic = f"bench/{node}/reading"  # not under edgecloud/: the bridge does not see it
    sub = PahoSubscriber(cfg, [topic], client_id=f"limit-{node}")
    sub.start()
    devices = 100
    join = publish(
        admin_url(infra), node, devices, events // devices, processes=publishers, topic=topic,
        prebuild=True, per_message=per_message,
    )  # fmt: skip
    got, first, last = 0, 0.0, 0.0
    per_publisher = [
        len(range(i, devices, publishers)) * (events // devices) for i in range(publishers)
    ]
    total = sum(-(-n // per_message) for n in per_publisher if n)  # messages
    deadline = time.monotonic() + 600
    while got < total and time.monotonic() < deadline:
        batch = sub.get_batch(5000, 0.005)
        sub.ack_all(batch)  # paho at its best: the batch's PUBACKs in one write
        if batch:
            first = first or batch[0].received_at
            last = batch[-1].received_at
            got += len(batch)
    join()
    sub.stop()
    return got * (devices * (events // devices)) / total / max(1e-6, last - first)


def throughput(
    infra: Infra,
    prefix: str,
    node: str,
    events: int,
    publishers: int,
    rate: float = 0.0,
    per_message: int = 1,
    bridge_pid: int | None = None,
    topic: str | None = None,
) -> BenchResult:
    """Publish ``events`` (unpaced when ``rate`` is 0) to ``topic`` (default: the node's events
    topic) and read them back from Kafka."""
    devices = 100
    per = max(1, events // devices)
    total = devices * per
    tag = new_tag()
    ids = expected_ids(devices, per, tag)
    cpu0 = cpu_seconds(bridge_pid) if bridge_pid else 0.0
    join = publish(
        admin_url(infra), node, devices, per, rate=rate, processes=publishers, tag=tag,
        topic=topic, prebuild=True, per_message=per_message,
    )  # fmt: skip
    join()
    t = tally(infra, prefix, ids)
    cpu = cpu_seconds(bridge_pid) - cpu0 if bridge_pid else 0.0
    seconds = max(1e-6, (t.last_append_ms - t.first_pub_ms) / 1000)
    lat = t.latencies_ms
    return BenchResult(
        name="bridge",
        messages=total,
        seconds=round(seconds, 3),
        rate_per_s=round(len(t.seen) / seconds, 1),
        p50_ms=round(percentile(lat, 50), 2),
        p99_ms=round(percentile(lat, 99), 2),
        lost=t.lost(ids),
        duplicates=t.duplicates,
        limit_rate_per_s=0.0,
        ratio_to_limit=0.0,
        extra={
            "order_violations": t.order_violations,
            "bridge_cpu_us_per_event": round(cpu / max(1, len(t.seen)) * 1e6, 1),
        },
    )


def drain(
    infra: Infra,
    bridge: BridgeProc,
    prefix: str,
    node: str,
    rate: float,
    outage_s: float,
    publishers: int,
) -> dict[str, Any]:
    """Ingest at ``rate`` with Kafka stopped for ``outage_s``; delivery rate once it is back."""
    after_s = max(10.0, outage_s)  # keep ingesting while the spool drains
    devices = 100
    per = max(1, int(rate * (outage_s + after_s + 5) / devices))
    tag = new_tag()
    ids = expected_ids(devices, per, tag)
    join = publish(admin_url(infra), node, devices, per, rate=rate, processes=publishers, tag=tag)
    time.sleep(1.5 + 5)  # steady state first
    infra.kafka.stop()
    down_at = time.monotonic()
    time.sleep(outage_s)
    infra.kafka.start()
    up_at = time.monotonic()
    h0 = bridge.health() or {}
    depth0 = int(h0.get("spool_depth", 0))
    done0 = int(h0.get("counters", {}).get("processed", 0))
    in0 = int(h0.get("counters", {}).get("events_in", 0))
    h1 = bridge.wait_drained(timeout=outage_s * 10 + 120)
    t_drain = time.monotonic() - up_at
    delivered = int(h1.get("counters", {}).get("processed", 0)) - done0
    ingested = int(h1.get("counters", {}).get("events_in", 0)) - in0
    join()
    t = tally(infra, prefix, ids, timeout_s=300)
    drain_rate = delivered / max(1e-6, t_drain)
    ingest_rate = ingested / max(1e-6, t_drain)  # what the bridge took in meanwhile
    return {
        "offered_rate_per_s": rate,
        "ingest_rate_per_s": round(ingest_rate, 1),
        "outage_s": round(up_at - down_at, 1),
        "spool_depth_at_restart": depth0,
        "drain_seconds": round(t_drain, 2),
        "drain_rate_per_s": round(drain_rate, 1),
        "drain_ratio": round(drain_rate / max(1e-6, ingest_rate), 2),
        "published": len(ids),
        "lost": t.lost(ids),
        "duplicates": t.duplicates,
        "order_violations": t.order_violations,
    }


def run(
    events: int = 100_000,
    rate: float = 5000.0,
    runs: int = 3,
    *,
    latency_s: float = 10.0,
    outage_s: float = 60.0,
    drain_rate: float = 5000.0,
    publishers: int = 2,
    shape: str = "arrays",
    workdir: Path | None = None,
    say: Callable[[str], None] = print,
    peer: str | None = None,
    kill_seconds: float = 20.0,
) -> BenchResult:
    """``shape``: ``arrays`` (what the edge publishes) or ``single`` (one event a message).
    ``peer="telegraf"`` also measures Telegraf in every run (one event a message) and a kill -9
    of both (extra.peer, bench/bridge_peer.py)."""
    if shape not in SHAPES:
        raise ValueError(f"shape {shape!r}: one of {', '.join(SHAPES)}")
    per_message = EVENTS_PER_MESSAGE if shape == "arrays" else 1
    base = Path(workdir or tempfile.mkdtemp(prefix="edgecloud-bench-bridge-"))
    infra = Infra(base / "state", Ports.free())
    say(f"starting a private Mosquitto and Kafka in {base}")
    infra.mosquitto.start()
    infra.kafka.start()
    bridge: BridgeProc | None = None
    peers: Any = None  # bench/bridge_peer.PeerRun with --peer telegraf
    try:
        prefix = f"bench{uuid.uuid4().hex[:6]}."  # the bench principal's topics
        infra.kafka_grant(prefix)
        node = "bench-1"
        ensure_topics(
            infra.kafka_client("bench"),
            all_topics(prefix),
            partitions=3,
            config={"message.timestamp.type": "LogAppendTime"},
        )
        env = bridge_env(
            infra_mqtt(infra),
            infra.kafka_client("bridge"),
            prefix,
            node,
            base / "spool",
            process.free_port(),
        )
        bridge = BridgeProc(env, base / "bridge.log")
        bridge.start()
        bridge.wait_ready()
        if peer is not None:
            from edgecloud.bench.bridge_peer import PeerRun

            peers = PeerRun.start(infra, base, bridge, prefix, node)
        results = []
        for i in range(runs):
            if peers is not None:
                peers.measure(events, rate, latency_s, publishers, say)
            limit = paho_limit(infra, events, publishers, per_message)
            say(f"run {i + 1}: paho receive loop {limit:,.0f} ev/s ({shape})")
            res = throughput(
                infra, prefix, node, events, publishers, per_message=per_message,
                bridge_pid=bridge.pid,
            )  # fmt: skip
            say(
                f"run {i + 1}: bridge {res.rate_per_s:,.0f} ev/s "
                f"({res.extra['bridge_cpu_us_per_event']} us CPU/event) "
                f"lost={res.lost} dup={res.duplicates}"
            )
            os.sync()  # the burst's dirty pages go out now, not in the middle of the latency run
            lat = throughput(
                infra, prefix, node, int(rate * latency_s), publishers, rate=rate,
                per_message=per_message,
            )  # fmt: skip
            say(f"run {i + 1}: at {rate:,.0f}/s p50={lat.p50_ms} ms p99={lat.p99_ms} ms")
            results.append(
                res.model_copy(
                    update={
                        "limit_rate_per_s": round(limit, 1),
                        "ratio_to_limit": round(res.rate_per_s / limit, 3),
                        "p50_ms": lat.p50_ms,
                        "p99_ms": lat.p99_ms,
                        "lost": res.lost + lat.lost,
                        "duplicates": res.duplicates + lat.duplicates,
                    }
                )
            )
        d: dict[str, Any] = {"lost": 0, "duplicates": 0}
        if outage_s > 0:
            say(f"drain: {drain_rate:,.0f}/s in, Kafka down for {outage_s:.0f} s")
            d = drain(infra, bridge, prefix, node, drain_rate, outage_s, publishers)
            say(
                f"drain: {d['drain_rate_per_s']:,.0f}/s = {d['drain_ratio']}x ingest, "
                f"lost={d['lost']}"
            )
        more: dict[str, Any] = {}
        if peers is not None:
            more["peer"] = peers.finish(rate, kill_seconds, publishers, say)
        out = BenchResult.from_runs(
            "bridge",
            results,
            drain=d,
            **more,
            latency_rate_per_s=rate,
            event_bytes=200,
            shape=shape,
            events_per_message=per_message,
            bridge_cpu_us_per_event=_median([r.extra["bridge_cpu_us_per_event"] for r in results]),
            publishers=publishers,
            cpus=os.cpu_count(),
        )
        return out.model_copy(
            update={"lost": out.lost + d["lost"], "duplicates": out.duplicates + d["duplicates"]}
        )
    finally:
        if bridge is not None:
            bridge.stop()
        if peers is not None:
            peers.stop()
        infra.kafka.stop()
        infra.mosquitto.stop()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0
