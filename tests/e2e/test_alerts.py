"""A real alert, end to end: Kafka stops under a running bridge, Prometheus (scraping the
bridge's /metrics) sees ``EdgecloudSpoolNotDraining`` go pending, then firing; Alertmanager
posts it to a webhook (an HTTP server of this test); Kafka comes back, the spool drains, the
alert resolves in Prometheus and Alertmanager posts the resolution.

Everything killed or started is private (own Kafka, Prometheus, Alertmanager, free ports); the
shared test Mosquitto carries the bridge's MQTT side. The shipped rule is used with its
threshold and ``for`` shortened (60 s / 2 m -> 3 s / 4 s) and 1 s scrape and evaluation
intervals, so that the test takes well under 2 minutes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from edgecloud.bench.bridge import BridgeProc, bridge_env, infra_mqtt
from edgecloud.dev import process
from edgecloud.dev.base import repo_deploy_dir
from edgecloud.dev.prometheus import AlertmanagerService, PrometheusService, Targets
from edgecloud.dev.stack import Infra

pytestmark = [pytest.mark.e2e]
ALERT = "EdgecloudSpoolNotDraining"


class Webhook:
    """Alertmanager's webhook receiver: keeps every (status, alertnames) it is sent."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def got(self, status: str) -> bool:
        return any(
            p["status"] == status and any(a["labels"]["alertname"] == ALERT for a in p["alerts"])
            for p in self.posts
        )


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def short_rules(target: Path) -> Path:
    """The shipped rules, with the spool alert's threshold and ``for`` shortened."""
    target.mkdir()
    shipped = repo_deploy_dir() / "prometheus" / "rules"
    for path in shipped.glob("*.yml"):
        data = yaml.safe_load(path.read_text())
        for group in data["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == ALERT:
                    assert rule["expr"].endswith("> 60"), rule["expr"]
                    rule["expr"] = rule["expr"].removesuffix("> 60") + "> 3"
                    rule["for"] = "4s"
        (target / path.name).write_text(yaml.safe_dump(data))
    return target


def alert_state(prom: PrometheusService) -> str | None:
    """pending / firing, or None when Prometheus has no such alert now."""
    data = httpx.get(f"{prom.url}/api/v1/alerts", timeout=5.0).json()["data"]["alerts"]
    states = [a["state"] for a in data if a["labels"]["alertname"] == ALERT]
    return states[0] if states else None


def test_spool_alert_fires_reaches_the_webhook_and_resolves(
    stack: Infra,
    private_infra: Infra,
    unique_id: str,
    tmp_path: Path,
    webhook: Webhook,
) -> None:
    private_infra.kafka.start()
    private_infra.kafka_grant(f"t{unique_id}.")
    node = f"a{unique_id}"
    port = process.free_port()
    env = bridge_env(
        infra_mqtt(stack), private_infra.kafka_client("bridge"), f"t{unique_id}.", node,
        tmp_path / "spool", port, heartbeat_interval_s="1",
    )  # fmt: skip
    bridge = BridgeProc(env, tmp_path / "bridge.log")
    state = private_infra.state_dir
    am = AlertmanagerService(
        state, private_infra.ports, process.free_port(), webhook_url=webhook.url,
        group_wait="1s", group_interval="1s",
    )  # fmt: skip
    prom = PrometheusService(
        state, private_infra.ports, process.free_port(), scrape_interval="1s",
        evaluation_interval="1s", rules_dir=short_rules(tmp_path / "rules"),
    )  # fmt: skip
    try:
        bridge.start()
        bridge.wait_ready()
        am.start()
        prom.prepare_dirs()
        prom.write_targets(Targets(bridge={node: f"127.0.0.1:{port}"}), alertmanager=am.url[7:])
        prom.start()

        def bridge_scraped() -> bool:
            query = {"query": f'edgecloud_bridge_kafka_up{{node_id="{node}"}}'}
            got = httpx.get(f"{prom.url}/api/v1/query", params=query, timeout=5.0).json()
            return [r["value"][1] for r in got["data"]["result"]] == ["1"]

        process.wait_until(bridge_scraped, 60.0, "Prometheus scraping the bridge, Kafka up")
        assert alert_state(prom) is None

        t0 = time.monotonic()
        private_infra.kafka.stop()
        seen: list[str] = []

        def reached(wanted: str) -> bool:
            now = alert_state(prom)
            if now is not None and (not seen or seen[-1] != now):
                seen.append(now)
            return now == wanted

        process.wait_until(lambda: reached("firing"), 60.0, f"{ALERT} firing")
        assert seen[:2] == ["pending", "firing"], seen  # pending first, for its 4 s
        process.wait_until(lambda: webhook.got("firing"), 30.0, "the webhook getting it")
        fired_s = time.monotonic() - t0

        private_infra.kafka.start()
        process.wait_until(lambda: alert_state(prom) is None, 90.0, f"{ALERT} resolved")
        process.wait_until(lambda: webhook.got("resolved"), 30.0, "the webhook's resolution")
        print(f"\nfiring after {fired_s:.1f} s; resolved {time.monotonic() - t0:.1f} s after stop")
        alert = next(a for p in webhook.posts if p["status"] == "firing" for a in p["alerts"])
        assert alert["labels"]["node_id"] == node and alert["labels"]["severity"] == "critical"
    finally:
        prom.stop()
        am.stop()
        bridge.stop()
