"""Prometheus metrics of the bridge and its small HTTP server (``/metrics``, ``/healthz``).

The server (stdlib, one thread per connection, GET only, HTTP/1.0: one request a connection)
is bounded against slow or many clients: a connection whose request line and headers have not
arrived within ``REQUEST_TIMEOUT_S`` is shut down, each read waits at most that long, and over
``MAX_CONNECTIONS`` open connections a new one is closed at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)
log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 32
DELIVERY_SAMPLE = 16  # one record in this many is timed (a histogram observation is ~2.5 us)


class BridgeMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()

        def counter(name: str, doc: str) -> Counter:
            return Counter("edgecloud_bridge_" + name, doc, registry=r)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge("edgecloud_bridge_" + name, doc, registry=r)

        self.received = counter("mqtt_messages", "MQTT messages received and spooled")
        self.events_in = counter("events_in", "events (records) appended to the spool")
        self.delivered = counter("delivered", "records Kafka acknowledged")
        self.dead_letters = counter("dead_letters", "invalid events sent to dead letters")
        self.kafka_errors = counter("kafka_errors", "failed Kafka deliveries")
        self.backpressure = counter(
            "backpressure_seconds", "time MQTT acks were held (spool budget full)"
        )
        self.producer_full = counter("producer_full", "BufferError from the producer")
        self.rebuilds = counter("producer_rebuilds", "producers rebuilt after fatal errors")
        self.depth = gauge("spool_depth", "records in the spool not yet acked by Kafka")
        self.depth_bytes = gauge("spool_bytes", "bytes of unacked records")
        self.disk_bytes = gauge("spool_disk_bytes", "bytes of spool segment files")
        self.disk_budget = gauge("spool_budget_bytes", "spool byte budget (backpressure above it)")
        self.oldest_age = gauge("spool_oldest_age_seconds", "age of the oldest unacked record")
        self.in_rate = gauge("ingest_rate", "events/s appended (last interval)")
        self.out_rate = gauge("delivery_rate", "records/s acked by Kafka (last interval)")
        self.kafka_up = gauge("kafka_up", "1 while Kafka accepts our records")
        self.accepting = gauge("accepting", "1 while MQTT messages are acked (under budget)")
        self.sync_seconds = Histogram(
            "edgecloud_bridge_spool_sync_seconds",
            "fdatasync of one spool group, before its MQTT acks",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "edgecloud_bridge_delivery_seconds",
            f"spool append -> Kafka delivery report, one record in {DELIVERY_SAMPLE}",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.counts: dict[str, int] = {
            "received": 0,
            "events_in": 0,
            "processed": 0,
            "dead_letters": 0,
            "kafka_errors": 0,
            "producer_rebuilds": 0,
        }
        self._synced: dict[str, int] = {}
        self._last = (time.monotonic(), 0, 0)

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def refresh_rates(self) -> tuple[float, float]:
        now = time.monotonic()
        t0, in0, out0 = self._last
        dt = max(1e-6, now - t0)
        rin = (self.counts["events_in"] - in0) / dt
        rout = (self.counts["processed"] - out0) / dt
        self._last = (now, self.counts["events_in"], self.counts["processed"])
        self.in_rate.set(rin)
        self.out_rate.set(rout)
        return rin, rout

    def sync_counters(self) -> None:
        """Move the plain int counters (cheap in the hot loop) into Prometheus."""
        pairs = (
            (self.received, "received"),
            (self.events_in, "events_in"),
            (self.delivered, "processed"),
            (self.dead_letters, "dead_letters"),
            (self.kafka_errors, "kafka_errors"),
            (self.rebuilds, "producer_rebuilds"),
        )
        for counter, name in pairs:
            delta = self.counts[name] - self._synced.get(name, 0)
            if delta > 0:
                counter.inc(delta)
                self._synced[name] = self.counts[name]


class _LimitedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int
    ) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0
        self.active = 0  # connections holding a slot
        self._count_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        with self._count_lock:
            self.active += 1
        try:
            super().process_request(request, client_address)
        except BaseException:  # the thread did not start: give its slot back, then re-raise
            self._release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr; a client cut at its deadline (or gone)
        # is expected here: one debug line instead
        log.debug("bridge HTTP request failed", exc_info=True, extra={"client": client_address})

    def _release(self) -> None:
        with self._count_lock:
            self.active -= 1
        self.slots.release()


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        metrics: BridgeMetrics,
        health: Callable[[], dict[str, Any]],
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            timeout = request_timeout_s  # each socket read (a silent client)

            def setup(self) -> None:
                super().setup()
                # a client dripping bytes under the per-read timeout: one deadline for it all
                self._deadline = threading.Timer(request_timeout_s, self._cut)
                self._deadline.daemon = True
                self._deadline.start()

            def _cut(self) -> None:
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def finish(self) -> None:
                self._deadline.cancel()
                super().finish()

            def do_GET(self) -> None:
                self._deadline.cancel()  # the request is in; writing the answer is ours
                if self.path.startswith("/metrics"):
                    body, ctype, code = generate_latest(registry), CONTENT_TYPE_LATEST, 200
                elif self.path.startswith("/healthz"):
                    state = health()
                    body = json.dumps(state).encode()
                    ctype, code = "application/json", 200 if state.get("ok") else 503
                else:
                    body, ctype, code = b'{"error": "not found"}', "application/json", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _LimitedServer((host, port), Handler, max_connections)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def active(self) -> int:
        """Connections open now (each holds one of ``max_connections`` slots)."""
        return self._server.active

    @property
    def refused(self) -> int:
        """Connections closed because ``MAX_CONNECTIONS`` were open."""
        return self._server.refused

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
