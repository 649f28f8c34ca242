"""``edgecloud cloud worker`` killed with -9 in the middle of ingest, then restarted: every
event_id is stored exactly once and the aggregates count each reading once. SIGTERM ends it
cleanly (exit 0) after committing the batch in hand."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from confluent_kafka import Producer

from edgecloud.cloud.settings import DEFAULT_GROUP_ID
from edgecloud.core.events import reading_event_id
from edgecloud.core.kafka import KafkaConnection
from edgecloud.core.topics import kafka_topic
from edgecloud.dev.process import wait_until
from edgecloud.dev.stack import Infra

N = 30_000
DEVICES = 20
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def produce_readings(kafka: KafkaConnection, prefix: str) -> list[str]:
    p = Producer(kafka.client_config(**{"enable.idempotence": True, "linger.ms": 20}))
    topic = kafka_topic("reading", prefix)
    ids = []
    for i in range(N):
        dev, seq = f"dev-{i % DEVICES}", i // DEVICES
        ev = {
            "schema": "edgecloud.event/v1",
            "event_id": str(reading_event_id(dev, seq)),
            "type": "reading",
            "node_id": "edge-a",
            "device_id": dev,
            "ts": (T0 + timedelta(milliseconds=100 * seq)).isoformat(),
            "data": {"seq": seq, "values": {"t": 20.5, "p": 1}},
        }
        ids.append(ev["event_id"])
        while True:
            try:
                p.produce(topic, key=dev, value=json.dumps(ev).encode())
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0
    return ids


def start_worker(stack: Infra, pg_url: str, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EDGECLOUD_"))}
    env.update(
        {
            "EDGECLOUD_DATABASE_URL": pg_url,
            **stack.kafka_client("worker").env(),
            "EDGECLOUD_KAFKA_TOPIC_PREFIX": prefix,
            "EDGECLOUD_KAFKA_GROUP_ID": f"{DEFAULT_GROUP_ID}-{prefix}",  # the worker's ACL
            "EDGECLOUD_WORKER_BATCH_SIZE": "500",
            "EDGECLOUD_LOG_FORMAT": "json",
        }
    )
    exe = Path(sys.executable).parent / "edgecloud"
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(exe), "cloud", "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM readings")).scalar_one())


def test_kill_9_mid_ingest_then_restart_loses_and_duplicates_nothing(
    stack: Infra, pg_url: str, kafka_prefix: str, engine: sa.Engine, tmp_path: Path
) -> None:
    ids = produce_readings(stack.kafka_client("bridge"), kafka_prefix)
    log = tmp_path / "worker.log"
    proc = start_worker(stack, pg_url, kafka_prefix, log)
    try:
        wait_until(lambda: count(engine) > 0, 120, "the first batch")
        at_kill = count(engine)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert 0 < at_kill < N, f"killed after {at_kill} rows: not mid-ingest"

    proc = start_worker(stack, pg_url, kafka_prefix, log)
    try:
        wait_until(lambda: count(engine) >= N, 240, f"{N} readings")
        time.sleep(1.0)  # anything still in flight would show up as an extra row
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT event_id FROM readings")).scalars().all()
        agg, agg_h = (
            conn.execute(
                sa.text(
                    f"SELECT metric, sum(count), sum(sum) FROM {table} GROUP BY metric "
                    "ORDER BY metric"
                )
            ).all()
            for table in ("aggregates_1m", "aggregates_1h")
        )
        devices = conn.execute(
            sa.text("SELECT count(*), sum(readings), min(last_seq), max(last_seq) FROM devices")
        ).one()
    assert len(got) == N and sorted(str(g) for g in got) == sorted(ids)
    for rollup in (agg, agg_h):  # the minutes and the hours each count every reading once
        assert [(m, int(c), float(s)) for m, c, s in rollup] == [
            ("p", N, float(N)),
            ("t", N, 20.5 * N),
        ]
    assert (devices[0], int(devices[1])) == (DEVICES, N)
    assert devices[2] == devices[3] == N // DEVICES - 1
    assert '"worker stopped"' in log.read_text()
