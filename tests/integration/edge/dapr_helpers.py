"""Helpers of the Dapr tests: a local subscriber app (plain HTTP routes, as a Dapr app sees
them: ``GET /dapr/subscribe`` and one POST route per topic) and sidecars on free ports."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from edgecloud.dev.dapr import Sidecar, SidecarPorts, SidecarSpec
from edgecloud.dev.process import wait_until
from edgecloud.dev.sidecars import dapr_mqtt_account, mqtt_secret_url
from edgecloud.dev.stack import Infra


class Subscriber:
    """An app that subscribes ``topics`` of ``pubsub`` and keeps every delivery's body."""

    def __init__(self, pubsub: str, topics: list[str]) -> None:
        self.received: list[dict[str, Any]] = []
        routes = {f"/t{i}": t for i, t in enumerate(topics)}
        subs = [{"pubsubname": pubsub, "topic": t, "route": r} for r, t in routes.items()]
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._reply(200, subs if self.path == "/dapr/subscribe" else {})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path in routes:
                    owner.received.append(json.loads(body))
                self._reply(200, {"status": "SUCCESS"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def edge_sidecar(state_dir: Path, broker: Infra, app_id: str, app_port: int | None) -> Sidecar:
    """A daprd with the edge components (deploy/dapr/edge) on free ports, started and ready."""
    url = mqtt_secret_url(broker, *dapr_mqtt_account(broker))
    spec = SidecarSpec(app_id, "edge", SidecarPorts.free(), app_port, {"mqtt-url": url})
    car = Sidecar(state_dir, spec)
    car.wait_ready(car.start())
    return car


def wait_subscribed(car: Sidecar, timeout: float = 60.0) -> None:
    """Until the sidecar's metadata lists its app's subscriptions (it asked the app)."""

    def subscribed() -> bool:
        try:
            meta = httpx.get(f"{car.spec.http_url}/v1.0/metadata", timeout=2.0).json()
        except (httpx.HTTPError, ValueError):
            return False
        return bool(meta.get("subscriptions"))

    wait_until(subscribed, timeout, f"{car.spec.name} subscriptions")
