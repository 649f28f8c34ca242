"""``bench bridge --peer telegraf``: Telegraf's MQTT -> Kafka hop beside our bridge, same run.

Both contenders read the same Mosquitto and write the same Kafka, one after the other in each
run, fed by the same publishers with the same events (one 200-byte reading event per MQTT
message, QoS 1). Our bridge subscribes to ``edgecloud/+/events/#``; the peer is fed on
``bench/<node>/events/reading`` (a topic our bridge does not see) and writes to topics of its
own prefix, created as ours (3 partitions, LogAppendTime), so one consumer tally counts each.

Per contender: rate of an unpaced burst (first publish to last Kafka append), p50 / p99 of
Kafka append time minus publish time at a fixed rate, CPU per event of its process over the
burst, peak RSS; then a kill -9 mid-stream at a fixed rate and a restart on the same state
(our spool + persistent session; the peer's disk buffer + persistent session): lost and
duplicated events counted by the consumer.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgecloud.adapters.kafka import ensure_topics
from edgecloud.adapters.kafka_durability import topic_durability
from edgecloud.bench import peer
from edgecloud.bench.bridge import admin_url, all_topics, new_tag, publish, tally, throughput
from edgecloud.bench.rollout import Sampler, proc_cpu_s
from edgecloud.core.kafka import KafkaConnection
from edgecloud.core.topics import kafka_topic
from edgecloud.dev.stack import Infra
from edgecloud.testing.tally import expected_ids


class Contender(Protocol):
    pid: int | None

    def start(self) -> int: ...
    def wait_ready(self) -> None: ...
    def kill9(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Side:
    name: str
    proc: Contender
    prefix: str
    node: str
    topic: str | None = None  # what the publishers publish to (None: the node's events topic)


def measure(
    infra: Infra, side: Side, events: int, rate: float, latency_s: float, publishers: int
) -> dict[str, Any]:
    """Burst rate, CPU and RSS of the contender, then p50 / p99 at ``rate``."""
    pid = side.proc.pid
    assert pid is not None, f"{side.name} is not running"
    sampler = Sampler(pid)
    sampler.start()
    cpu0 = proc_cpu_s(pid)
    burst = throughput(infra, side.prefix, side.node, events, publishers, topic=side.topic)
    cpu = proc_cpu_s(pid) - cpu0
    os.sync()
    lat = throughput(
        infra, side.prefix, side.node, int(rate * latency_s), publishers, rate=rate,
        topic=side.topic,
    )  # fmt: skip
    sampler.stop.set()
    return {
        "rate_per_s": burst.rate_per_s,
        "p50_ms": lat.p50_ms,
        "p99_ms": lat.p99_ms,
        "cpu_us_per_event": round(cpu / max(1, burst.messages) * 1e6, 1),
        "rss_mb_peak": round(sampler.peak_rss, 1),
        "lost": burst.lost + lat.lost,
        "duplicates": burst.duplicates + lat.duplicates,
        "order_violations": int(burst.extra["order_violations"])
        + int(lat.extra["order_violations"]),
    }


def kill9(
    infra: Infra,
    side: Side,
    rate: float,
    seconds: float,
    publishers: int,
    ready: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Publish ``rate`` x ``seconds`` events; kill -9 the contender 40 % in, restart it."""
    devices = 100
    per = max(1, int(rate * seconds / devices))
    tag = new_tag()
    ids = expected_ids(devices, per, tag)
    join = publish(
        admin_url(infra), side.node, devices, per, rate=rate, processes=publishers, tag=tag,
        topic=side.topic,
    )  # fmt: skip
    time.sleep(1.5 + 0.4 * seconds)  # publishing starts 1.5 s after publish()
    side.proc.kill9()
    killed_at = time.monotonic()
    side.proc.start()
    (ready or side.proc.wait_ready)()
    restart_s = time.monotonic() - killed_at
    join()
    t = tally(infra, side.prefix, ids, timeout_s=180)
    return {**t.summary(ids), "restart_s": round(restart_s, 2), "offered_rate_per_s": rate}


def telegraf_side(
    infra: Infra, workdir: Path, kafka: KafkaConnection, name: str, disk_buffer: bool
) -> Side:
    """One Telegraf, started and connected, on an MQTT topic and Kafka topics of its own."""
    prefix = f"benchp{new_tag()[:6]}."  # the bench principal's topics
    infra.kafka_grant(prefix)
    node = name
    ensure_topics(
        infra.kafka_client("bench"),
        all_topics(prefix),
        partitions=3,
        config={"message.timestamp.type": "LogAppendTime"},
    )
    user, pw = infra.mqtt_account("admin")  # the bench/ topics are the admin account's
    topic = f"bench/{node}/events/reading"
    cfg = peer.BridgePeerConfig(
        mqtt_url=infra.mqtt_url,
        mqtt_username=user,
        mqtt_password=pw,
        topic_in=topic,
        kafka=kafka,
        topic_out=kafka_topic("reading", prefix),
        buffer_dir=workdir / "buffer" if disk_buffer else None,
        client_id=name,
    )
    proc = peer.TelegrafProc(cfg.render(), workdir)
    proc.start()
    proc.wait_ready()
    return Side(name, proc, prefix, node, topic)


def summary(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians of each figure per contender, and ours / each peer (a rate ratio above 1, or a
    latency, CPU or RSS ratio below 1, means ours is ahead)."""

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    keys = ("rate_per_s", "p50_ms", "p99_ms", "cpu_us_per_event", "rss_mb_peak")
    out: dict[str, Any] = {}
    for name, runs in rows.items():
        out[name] = {k: med(runs, k) for k in keys}
        for k in ("lost", "duplicates", "order_violations"):
            out[name][k] = sum(r[k] for r in runs)
        out[name]["per_run"] = runs
    ours = out["edgecloud"]
    out["ratio_ours_to"] = {
        name: {k: round(ours[k] / out[name][k], 3) if out[name][k] else None for k in keys}
        for name in rows
        if name != "edgecloud"
    }
    return out


@dataclass
class PeerRun:
    """Our bridge and the Telegraf peers (disk buffer as the issue asks; memory buffer, its
    default) measured one after the other in each run, then a kill -9 of each."""

    infra: Infra
    sides: list[Side]
    kafka: KafkaConnection
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def start(cls, infra: Infra, base: Path, bridge: Contender, prefix: str, node: str) -> PeerRun:
        kafka = kafka_settings(infra)
        sides = [Side("edgecloud", bridge, prefix, node)]
        run = cls(infra, sides, kafka)
        for name, disk in (("telegraf-disk", True), ("telegraf-memory", False)):
            sides.append(telegraf_side(infra, base / name, kafka, name, disk))
        return run

    def measure(
        self,
        events: int,
        rate: float,
        latency_s: float,
        publishers: int,
        say: Callable[[str], None],
    ) -> None:
        for side in self.sides:
            row = measure(self.infra, side, events, rate, latency_s, publishers)
            self.rows.setdefault(side.name, []).append(row)
            say(f"{side.name}: {row}")

    def finish(
        self, rate: float, kill_s: float, publishers: int, say: Callable[[str], None]
    ) -> dict[str, Any]:
        out = summary(self.rows)
        out["kafka_topic"] = durability(self.infra, self.sides[0].prefix)
        out["telegraf_version"] = peer.VERSION
        for side in self.sides:
            out[side.name]["kill9"] = k = kill9(self.infra, side, rate, kill_s, publishers)
            say(f"kill -9 {side.name}: {k}")
        return out

    def stop(self) -> None:
        for side in self.sides[1:]:
            side.proc.stop()


def durability(infra: Infra, prefix: str) -> dict[str, Any]:
    d = topic_durability(infra.kafka_client("bench"), kafka_topic("reading", prefix))
    if d["brokers"] == 1:
        d["note"] = "one broker: acks=all (required_acks=-1) is trivially satisfied"
    return d


def kafka_settings(infra: Infra) -> KafkaConnection:
    """The Kafka connection of the peer (principal ``bench``)."""
    return infra.kafka_client("bench")
