"""The cloud worker under a real daprd (deploy/dapr/cloud, app id ``cloud-worker``) on the real
Kafka and Postgres: its database URL and OpenAI key from the ``local-secrets`` store win over
the environment, and each anomaly at or above ``EDGECLOUD_ALERT_MIN_SCORE`` reaches a local
webhook through the ``alert-webhook`` output binding (``bindings.http``), once each."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_worker_ingest import drain, produce, scored_reading

from edgecloud.cloud.dapr_secrets import with_dapr_secrets
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.cloud.settings import DEFAULT_GROUP_ID, CloudSettings
from edgecloud.cloud.worker.metrics import WorkerMetrics
from edgecloud.cloud.worker.service import build_worker
from edgecloud.core.topics import kafka_topic
from edgecloud.dev.dapr import Sidecar, SidecarPorts, SidecarSpec
from edgecloud.dev.process import wait_until
from edgecloud.dev.sidecars import kafka_secrets
from edgecloud.dev.stack import Infra

pytestmark = pytest.mark.integration


class Webhook:
    """A local HTTP receiver: keeps the JSON body of every POST."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.stop()


def test_store_secrets_and_alerts_through_the_binding(
    stack: Infra,
    pg_url: str,
    kafka_prefix: str,
    webhook: Webhook,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    migrate(pg_url)
    store = {**kafka_secrets(stack), "alert-webhook-url": webhook.url,
             "database-url": pg_url, "openai-api-key": "sk-from-the-store"}  # fmt: skip
    spec = SidecarSpec("cloud-worker", "cloud", SidecarPorts.free(), None, store)
    car = Sidecar(tmp_path / "state", spec)
    car.wait_ready(car.start())
    try:
        wrong = pg_url.rsplit("/", 1)[0] + "/no_such_database"
        monkeypatch.setenv("EDGECLOUD_DATABASE_URL", wrong)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-env")
        flags = {**stack.kafka_client("worker").settings(), "kafka_topic_prefix": kafka_prefix,
                 "kafka_group_id": f"{DEFAULT_GROUP_ID}-{kafka_prefix}{uuid.uuid4().hex[:6]}",
                 "worker_poll_timeout_s": 0.2,
                 "dapr_http_port": spec.ports.http, "dapr_grpc_port": spec.ports.grpc,
                 "dapr_secret_store": "local-secrets", "alert_binding": "alert-webhook",
                 "alert_min_score": 0.5}  # fmt: skip
        settings = with_dapr_secrets(CloudSettings(**flags), flags)
        assert settings.database_url == pg_url  # the store wins over the environment
        assert settings.openai_api_key == "sk-from-the-store"
        flagged = CloudSettings(**flags, database_url=wrong)
        given = with_dapr_secrets(flagged, {"database_url": wrong})
        assert given.database_url == wrong  # a flag wins over the store

        evs = []
        for seq in range(60):
            ev = scored_reading("alert-dev", seq)  # anomaly on every 5th reading
            ev["data"]["inference"]["score"] = 0.3 if seq % 10 == 0 else 0.8
            evs.append(ev)
        want = {e["event_id"] for e in evs if e["data"]["seq"] % 10 == 5}
        assert len(want) == 6
        topic = kafka_topic("reading", kafka_prefix)
        metrics = WorkerMetrics()
        engine = make_engine(settings.database_url)
        worker = build_worker(settings, engine, metrics)
        try:
            produce(stack.kafka_client("bridge"), [(topic, e["device_id"], json.dumps(e).encode())
                                            for e in evs])  # fmt: skip
            drain(worker, len(evs))
            wait_until(lambda: len(webhook.bodies) >= len(want), 60.0, "alerts at the webhook")
            assert worker.totals.written.readings_new == 60  # the store's database
            assert worker.alerts is not None
            wait_until(lambda: worker.alerts is not None and worker.alerts.out.sent == 6,
                       30.0, "sent counted")  # fmt: skip
            assert sorted(b["event_id"] for b in webhook.bodies) == sorted(want)
            first = webhook.bodies[0]
            assert first["schema"] == "edgecloud.alert/v1" and first["severity"] == 0.8
            assert first["device_id"] == "alert-dev" and first["model"] == "iso"
            sent = metrics.registry.get_sample_value(
                "edgecloud_dapr_out_sent_total", {"what": "binding"}
            )
            assert (sent, worker.alerts.out.failed) == (6.0, 0)
        finally:
            worker.consumer.close()
            if worker.alerts is not None:
                worker.alerts.stop()
            engine.dispose()
    finally:
        car.stop()
