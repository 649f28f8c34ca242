"""``edgecloud bench e2e``: the whole path on a private stack (CONTRACT section 8).

device (simulator, paced QoS 1 publishes) -> Mosquitto -> edge agent (validate, ONNX
``sensor-anomaly/1.0.0`` rolled out from the cloud, local Postgres) -> Mosquitto -> bridge ->
Kafka -> cloud worker -> cloud Postgres.

A private stack (``dev up`` machinery: its own state dir, free ports, one edge node) is
started once, the model is rolled out, then each run publishes ``rate`` readings/s from
``devices`` devices for ``duration`` seconds under a fresh device prefix and waits until the
cloud holds them. Measured from the cloud database:

- ``messages``: unique (device_id, seq) rows of the run; ``lost`` = published - that;
  ``duplicates`` = rows - unique rows (0 by the schema's unique key; kept as a check);
- ``rate_per_s``: unique rows / (last row's ``received_at`` - first reading's ``ts``): the rate
  sustained end to end, publish of the first to commit of the last;
- ``p50_ms`` / ``p99_ms``: per reading, ``received_at`` (the cloud commit's ``now()``) minus
  the reading's ``ts`` (the simulator's wall clock at publish; same machine, same clock);
- ``limit_rate_per_s``: the slowest raw hop's library limit, measured in the same run: the
  paho receive loop (``bench.bridge.paho_limit``: one adapter PahoSubscriber acking at once, on a
  topic nobody else reads). Of the raw libraries on this path (paho receive, onnxruntime,
  psycopg COPY, librdkafka produce / consume) the paho loop is by far the slowest here (tens
  of thousands of messages/s against hundreds of thousands to millions for the others, see
  docs/bridge.md and docs/models.md), so it bounds any single-broker MQTT pipeline.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgecloud.bench.common import BenchResult

Log = Callable[[str], None]


def _pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def cloud_rows(url: str, prefix: str) -> int:
    import psycopg

    with psycopg.connect(_pg(url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings WHERE device_id LIKE %s", (prefix + "-%",)
        ).fetchone()
    return int(row[0]) if row else 0


def cloud_stats(url: str, prefix: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(_pg(url)) as conn:
        row = conn.execute(
            """
            SELECT count(*), count(DISTINCT (device_id, seq)),
                   extract(epoch FROM max(received_at) - min(ts)),
                   percentile_disc(0.5) WITHIN GROUP (ORDER BY received_at - ts),
                   percentile_disc(0.99) WITHIN GROUP (ORDER BY received_at - ts),
                   max(received_at - ts)
            FROM readings WHERE device_id LIKE %s
            """,
            (prefix + "-%",),
        ).fetchone()
    assert row is not None

    def ms(v: Any) -> float:
        return round(v.total_seconds() * 1000, 1) if v is not None else 0.0

    return {
        "rows": int(row[0]),
        "unique": int(row[1]),
        "span_s": float(row[2] or 0.0),
        "p50_ms": ms(row[3]),
        "p99_ms": ms(row[4]),
        "max_ms": ms(row[5]),
    }


def one_run(
    info: dict[str, Any],
    infra: Any,
    devices: int,
    rate: float,
    duration: float,
    limit_events: int,
    log: Log,
) -> BenchResult:
    from edgecloud.adapters.mqtt import MqttConfig, make_publisher
    from edgecloud.bench.bridge import paho_limit
    from edgecloud.core.settings import mqtt_client_options
    from edgecloud.sim.publisher import SimulationConfig, run_simulation

    prefix = "e2e" + secrets.token_hex(3)
    creds = info["device_credentials"] or {}
    config = MqttConfig.from_url(
        info["mqtt_url"], username=creds.get("username"), password=creds.get("password"),
        **mqtt_client_options(),
    )  # fmt: skip
    cfg = SimulationConfig(
        devices=devices, rate_hz=rate / devices, duration_s=duration, anomaly_rate=0.02,
        seed=int(time.time()) % 10_000, device_prefix=prefix,
    )  # fmt: skip
    pub = make_publisher(config, client_id=f"bench-{prefix}")
    pub.start()
    try:
        stats = run_simulation(cfg, pub)
    finally:
        pub.stop()
    log(f"  published {stats.published} in {stats.seconds:.1f} s ({stats.rate_per_s:.0f}/s)")
    url = info["cloud_database_url"]
    last, last_change = -1, time.monotonic()
    while True:  # drain: until every reading is in, or nothing arrives for 60 s
        got = cloud_rows(url, prefix)
        if got != last:
            last, last_change = got, time.monotonic()
        if got >= stats.published or time.monotonic() - last_change > 60.0:
            break
        time.sleep(0.5)
    st = cloud_stats(url, prefix)
    rate_ = st["unique"] / st["span_s"] if st["span_s"] > 0 else 0.0
    limit = paho_limit(infra, limit_events, 1)
    log(
        f"  cloud rows {st['rows']} (unique {st['unique']}), end to end {rate_:.0f}/s, "
        f"p50 {st['p50_ms']} ms, p99 {st['p99_ms']} ms; paho receive limit {limit:.0f}/s"
    )
    return BenchResult(
        name="e2e",
        messages=st["unique"],
        seconds=round(st["span_s"], 3),
        rate_per_s=round(rate_, 1),
        p50_ms=st["p50_ms"],
        p99_ms=st["p99_ms"],
        lost=stats.published - st["unique"],
        duplicates=st["rows"] - st["unique"],
        limit_rate_per_s=round(limit, 1),
        ratio_to_limit=round(rate_ / limit, 4) if limit else 0.0,
        extra={
            "published": stats.published,
            "offered_rate_per_s": rate,
            "publish_rate_per_s": round(stats.rate_per_s, 1),
            "max_ms": st["max_ms"],
            "device_prefix": prefix,
        },
    )


def run(
    devices: int = 20,
    rate: float = 500.0,
    duration: float = 20.0,
    runs: int = 3,
    limit_events: int = 20_000,
    state_dir: Path | None = None,
    keep: bool = False,
    log: Log = print,
) -> BenchResult:
    from edgecloud.dev import process
    from edgecloud.dev.base import Ports
    from edgecloud.dev.control import StackConfig, down, status, up
    from edgecloud.dev.demo import Api, follow, push, start_rollout, trust_dev_key

    own_dir = state_dir is None
    state = state_dir or Path(tempfile.mkdtemp(prefix="edgecloud-bench-e2e-"))
    # the apps' ports of this private stack (read by dev/apps.py from the environment)
    os.environ["EDGECLOUD_DEV_API_PORT"] = str(process.free_port())
    os.environ["EDGECLOUD_DEV_AGENT_PORT_BASE"] = str(process.free_port() - 1)
    os.environ["EDGECLOUD_DEV_BRIDGE_PORT_BASE"] = str(process.free_port() - 1)
    os.environ["EDGECLOUD_TRACE_SAMPLE"] = "0"  # no per-reading log lines in a benchmark
    for name in ("PROMETHEUS", "ALERTMANAGER", "WORKER_METRICS"):
        os.environ[f"EDGECLOUD_DEV_{name}_PORT"] = str(process.free_port())
    config = StackConfig(state, nodes=1, ports=Ports.free())
    log(f"private stack in {state}")
    try:
        reports = up(config, lambda text: log(f"  {text}"))
        dead = [r.name for r in reports if r.pid is None]
        if dead:
            raise RuntimeError(f"apps did not start: {', '.join(dead)} (logs in {state}/logs)")
        info = status(config)
        api = Api(info["cloud_api_url"], info["tokens"])
        log(f"  operator key: {trust_dev_key(api)}; {push(api, '1.0.0')}")
        time.sleep(1.0)
        rid = start_rollout(api, "1.0.0", [100], {"shadow_readings": 0})
        ro = follow(api, rid, 120.0, log, lambda: "")
        if ro["state"] != "succeeded":
            raise RuntimeError(f"rollout of sensor-anomaly 1.0.0: {ro['state']} {ro.get('detail')}")
        results = []
        for i in range(runs):
            log(f"run {i + 1}/{runs}: {devices} devices, {rate:g} readings/s, {duration:g} s")
            results.append(
                one_run(info, config.infra(), devices, rate, duration, limit_events, log)
            )
        return BenchResult.from_runs(
            "e2e",
            results,
            devices=devices,
            offered_rate_per_s=rate,
            duration_s=duration,
            limit="paho receive loop (adapters.mqtt PahoSubscriber, ack at once), same broker",
            latency="cloud received_at (commit now()) - reading ts (publish wall clock)",
        )
    finally:
        if not keep:
            with contextlib.suppress(Exception):
                down(config)
            if own_dir:
                shutil.rmtree(state, ignore_errors=True)
