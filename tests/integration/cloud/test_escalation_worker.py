"""``edgecloud cloud worker`` as a process: with a key, flagged readings are escalated to the
OpenAI stand-in beside ingest and the counters show on /metrics; without a key the state says
``disabled`` and the queued rows too."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from confluent_kafka import Producer

from edgecloud.cloud.escalation import escalation_status
from edgecloud.core.events import reading_event_id
from edgecloud.core.kafka import KafkaConnection
from edgecloud.core.topics import kafka_topic
from edgecloud.dev.openai_standin import StandinServer
from edgecloud.dev.stack import Infra


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def produce(kafka: KafkaConnection, prefix: str, n: int) -> None:
    p = Producer(kafka.client_config(**{"enable.idempotence": True}))
    for seq in range(n):
        ev = {
            "schema": "edgecloud.event/v1",
            "event_id": str(reading_event_id("pump-1", seq)),
            "type": "reading",
            "node_id": "edge-a",
            "device_id": "pump-1",
            "ts": f"2026-11-22T10:00:{seq:02d}Z",
            "data": {
                "seq": seq,
                "values": {"current": 9.5},
                "inference": {
                    "model": "m",
                    "version": "1",
                    "anomaly": True,
                    "escalate": seq % 2 == 0,
                },
            },
        }
        p.produce(kafka_topic("reading", prefix), key="pump-1", value=json.dumps(ev).encode())
    assert p.flush(30) == 0


def start(stack: Infra, pg_url: str, prefix: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EDGECLOUD_"))}
    full.update(
        {
            "EDGECLOUD_DATABASE_URL": pg_url,
            **stack.kafka_client("worker").env(),
            "EDGECLOUD_KAFKA_TOPIC_PREFIX": prefix,
            **env,
        }
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "edgecloud"), "cloud", "worker"],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def statuses(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.text("SELECT status FROM escalations ORDER BY event_id")).scalars()
        )


def wait(pred: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_worker_escalates_beside_ingest(
    stack: Infra, pg_url: str, kafka_prefix: str, engine: sa.Engine, tmp_path: Path
) -> None:
    log, port = tmp_path / "worker.log", free_port()
    with StandinServer() as standin:
        proc = start(
            stack,
            pg_url,
            kafka_prefix,
            log,
            OPENAI_API_KEY=standin.api_key or "",
            OPENAI_BASE_URL=standin.base_url,
            EDGECLOUD_ESCALATION_MODEL="edgecloud-standin",
            EDGECLOUD_WORKER_METRICS_PORT=str(port),
        )
        try:
            produce(stack.kafka_client("bridge"), kafka_prefix, 10)
            wait(lambda: statuses(engine) == ["done"] * 5, 60, "5 escalations done")
            # The counters move just after the commits the statuses see: poll until they show.
            want = (
                'edgecloud_worker_escalations_total{status="done"} 5.0',
                'edgecloud_worker_events_total{outcome="new",type="reading"} 10.0',
            )

            def scraped() -> str:
                return httpx.get(f"http://127.0.0.1:{port}/metrics").text

            wait(lambda: all(w in scraped() for w in want), 15, "metrics caught up")
            metrics = scraped()
        finally:
            stop(proc, log)
        assert standin.state.counters.get("chat_completions") == 5
    assert 'edgecloud_worker_escalations_total{status="done"} 5.0' in metrics
    assert 'edgecloud_worker_events_total{outcome="new",type="reading"} 10.0' in metrics
    state = escalation_status(engine)
    assert state["state"] == "enabled" and state["tokens_used"] > 0
    # each verdict is also a label of source "escalation", mapped from its severity
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT e.severity, l.verdict, l.anomalous FROM escalations e JOIN labels l"
                " ON l.event_id = e.event_id AND l.source = 'escalation'"
            )
        ).all()
    assert len(rows) == 5
    assert all(sev == verdict and anomalous == (sev != "low") for sev, verdict, anomalous in rows)


def test_without_a_key_escalation_is_disabled(
    stack: Infra, pg_url: str, kafka_prefix: str, engine: sa.Engine, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    proc = start(stack, pg_url, kafka_prefix, log)
    try:
        produce(stack.kafka_client("bridge"), kafka_prefix, 4)
        wait(lambda: len(statuses(engine)) == 2, 60, "2 queued escalations")
    finally:
        stop(proc, log)
    assert statuses(engine) == ["disabled", "disabled"]
    assert escalation_status(engine)["state"] == "disabled"
    assert "escalation disabled" in log.read_text()
