"""``edgecloud bench cloud``: Kafka -> Postgres ingest with aggregation (CONTRACT section 8).

One run: N reading events (100 devices, 3 scalar metrics and a short array each, 10 % anomalies,
0.1 % escalated) are produced to a fresh topic (3 partitions); the worker's own ingest path
(``BatchConsumer`` + ``decode`` + ``Store`` in the pipelined ``Worker.run``) consumes them into
a fresh, migrated database. ``rate_per_s`` = N / (time from the first batch to the last offset
commit); ``p50_ms`` / ``p99_ms`` are per-batch latencies (validate + one DB transaction +
offset commit). The limit, measured in the same run on the same machine: one raw psycopg
``COPY`` of the same rows (pre-rendered, the cheapest form) into the same ``readings`` table
(emptied first, same indexes), one commit. ``lost`` = events not in ``readings``;
``duplicates`` = rows beyond one per event; aggregates are checked (count = 3 N).
"""

from __future__ import annotations

import json
import logging
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from edgecloud.adapters.kafka_consumer import BatchConsumer, ensure_topics, produce_values
from edgecloud.bench.common import BenchResult, percentile
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.cloud.worker.service import Worker
from edgecloud.cloud.worker.store import Store
from edgecloud.core.events import reading_event_id
from edgecloud.core.gctune import tune_gc
from edgecloud.core.kafka import KafkaConnection
from edgecloud.core.topics import kafka_dead_letter_topic, kafka_topic
from edgecloud.dev.postgres import create_database, drop_database, libpq_url

log = logging.getLogger("edgecloud.bench.cloud")

DEVICES = 100
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
COPY_COLUMNS = (
    'event_id, device_id, seq, node_id, ts, received_at, "values", model, model_version, '
    "score, anomaly, escalate, inference"
)


def make_events(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        dev, seq = f"press-{i % DEVICES:03d}", i // DEVICES
        anomaly = i % 10 == 0
        out.append(
            {
                "schema": "edgecloud.event/v1",
                "event_id": str(reading_event_id(dev, seq)),
                "type": "reading",
                "node_id": f"edge-{i % 4}",
                "device_id": dev,
                "ts": (T0 + timedelta(milliseconds=200 * seq)).isoformat(),
                "data": {
                    "seq": seq,
                    "values": {
                        "temperature": round(60 + (i % 97) * 0.1, 2),
                        "vibration_rms": round(0.3 + (i % 13) * 0.01, 3),
                        "pressure": round(3 + (i % 7) * 0.05, 3),
                        "spectrum": [0.1, 0.2, 0.05, 0.01],
                    },
                    "inference": {
                        "model": "vibration-iforest",
                        "version": "1.2.0",
                        "score": 0.91 if anomaly else 0.12,
                        "anomaly": anomaly,
                        "escalate": i % 1000 == 0,
                        "latency_ms": 0.8,
                        "outputs": {"score": 0.91 if anomaly else 0.12},
                    },
                },
            }
        )
    return out


def _copy_text(v: Any) -> str:
    if v is None:
        return "\\N"
    s = v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict) else str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_rows(events: list[dict[str, Any]]) -> bytes:
    now = datetime.now(UTC).isoformat()
    lines = []
    for ev in events:
        inf = ev["data"]["inference"]
        cols = (
            ev["event_id"],
            ev["device_id"],
            ev["data"]["seq"],
            ev["node_id"],
            ev["ts"],
            now,
            ev["data"]["values"],
            inf["model"],
            inf["version"],
            inf["score"],
            "t" if inf["anomaly"] else "f",
            "t" if inf["escalate"] else "f",
            inf,
        )
        lines.append("\t".join(_copy_text(c) for c in cols))
    return ("\n".join(lines) + "\n").encode()


def raw_copy_rate(url: str, rows: bytes, n: int) -> float:
    """events/s of one psycopg COPY of ``rows`` into the emptied readings table, one commit."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("TRUNCATE readings, aggregates_1m, aggregates_1h, devices, escalations")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY readings ({COPY_COLUMNS}) FROM STDIN") as cp:
            cp.write(rows)
        conn.commit()
        elapsed = time.perf_counter() - started
        got = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert got is not None and got[0] == n, f"raw COPY stored {got} of {n}"
    return n / elapsed


def one_run(admin_url: str, kafka: KafkaConnection, n: int, batch_size: int) -> BenchResult:
    tag = uuid.uuid4().hex[:8]
    db_name, prefix = f"edgecloud_bench_cloud_{tag}", f"bench{tag}."
    url = create_database(admin_url, db_name)
    try:
        migrate(url)
        topic = kafka_topic("reading", prefix)
        ensure_topics(kafka, [topic], partitions=3)
        events = make_events(n)
        payloads = [(e["device_id"].encode(), json.dumps(e).encode()) for e in events]
        produce_values(kafka, topic, payloads)
        # The limit's rows, rendered now: the events (millions of objects) must not stay alive
        # while the worker runs, or every full garbage collection of the worker walks them.
        rows = copy_rows(events)
        del payloads, events
        engine = make_engine(url, pool_size=2)
        consumer = BatchConsumer(kafka, f"{prefix}bench", [topic])
        worker = Worker(
            consumer,
            Store(engine, escalation_status="disabled"),
            kafka_dead_letter_topic(prefix),
            batch_size=batch_size,
            poll_timeout_s=0.2,
            keep_latencies=True,
        )
        tune_gc()  # as ``edgecloud cloud worker`` does before consuming
        try:
            cpu = time.process_time()
            worker.run(max_messages=n)
            ended = time.perf_counter()
            cpu = time.process_time() - cpu
        finally:
            consumer.close()
        assert worker.totals.first_started is not None
        seconds = ended - worker.totals.first_started
        with engine.connect() as conn:
            stored, distinct, agg = conn.exec_driver_sql(
                "SELECT count(*), count(DISTINCT event_id), "
                "(SELECT coalesce(sum(count), 0) FROM aggregates_1m) FROM readings"
            ).one()
        engine.dispose()
        limit = raw_copy_rate(url, rows, n)
        rate = n / seconds
        lat_ms = [s * 1000 for s in worker.totals.batch_seconds]
        return BenchResult(
            name="cloud",
            messages=n,
            seconds=round(seconds, 3),
            rate_per_s=round(rate, 1),
            p50_ms=round(percentile(lat_ms, 50), 2),
            p99_ms=round(percentile(lat_ms, 99), 2),
            lost=max(0, n - int(distinct)),
            duplicates=int(stored) - int(distinct),
            limit_rate_per_s=round(limit, 1),
            ratio_to_limit=round(rate / limit, 3),
            extra={
                "batches": worker.totals.batches,
                "batch_size": batch_size,
                "aggregate_count_ok": int(agg) == 3 * n,
                # CPU of the worker process (all its threads: validation, the writer, librdkafka)
                # per event: less sensitive to other load on the machine than the rate
                "worker_cpu_us_per_event": round(cpu / n * 1e6, 1),
            },
        )
    finally:
        drop_database(admin_url, db_name)


def run(
    admin_url: str,
    kafka: KafkaConnection,
    *,
    events: int = 200_000,
    runs: int = 3,
    batch_size: int = 2000,
) -> BenchResult:
    results = []
    for i in range(runs):
        res = one_run(admin_url, kafka, events, batch_size)
        log.info(
            "bench cloud run %d: %.0f events/s, limit %.0f/s, ratio %.3f, worker CPU %.1f us/event",
            i + 1,
            res.rate_per_s,
            res.limit_rate_per_s,
            res.ratio_to_limit,
            res.extra["worker_cpu_us_per_event"],
        )
        results.append(res)
    cpu = [r.extra["worker_cpu_us_per_event"] for r in results]
    return BenchResult.from_runs(
        "cloud",
        results,
        worker_cpu_us_per_event=statistics.median(cpu),
        worker_cpu_us_per_event_per_run=cpu,
        what="Kafka -> cloud worker -> Postgres (readings + aggregates_1m "
        "+ devices), limit: raw psycopg COPY of the same rows into readings",
    )
