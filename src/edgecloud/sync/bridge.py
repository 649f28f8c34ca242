"""The sync bridge: edge MQTT events -> durable spool -> Kafka, nothing lost.

One loop, one thread (paho and librdkafka run their own I/O threads):

1. take a batch of MQTT messages (QoS 1, persistent session, manual acks);
2. route each into Kafka records (one per event; invalid ones to dead letters);
3. append them to the spool and hand spooled records to the producer in spool order until it
   pushes back (``BufferError``);
4. ``fdatasync`` the spool once for the batch, THEN ack the MQTT messages (Kafka already works
   on the records meanwhile; a crash before the sync means a redelivery, a duplicate at most);
5. ``poll(0)``: delivery reports ack records in the spool, which trims itself past the
   watermark (checkpointed only between batches, when everything appended is synced).

While the spool's unacked bytes exceed ``spool_max_bytes`` step 1 is skipped: MQTT messages
stay unacknowledged at the broker (backpressure), none is dropped. A failed delivery makes the
bridge wait for the producer to settle and replay the spool from the watermark; a fatal
producer error builds a new producer first.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from edgecloud.adapters.kafka import (
    DeliveryError,
    KafkaProducer,
    ensure_topics,
    producer_config,
)
from edgecloud.adapters.mqtt import (
    InboundMessage,
    MqttConfig,
    Subscriber,
    config_from_settings,
    make_subscriber,
)
from edgecloud.core.errors import Backpressure, TransportError
from edgecloud.core.events import HeartbeatData, heartbeat_event
from edgecloud.core.gctune import tune_gc
from edgecloud.core.topics import EVENTS_SUBSCRIPTION
from edgecloud.core.trace import event_trace_id, log_hop, sampled
from edgecloud.sync.metrics import DELIVERY_SAMPLE, BridgeMetrics, HttpServer
from edgecloud.sync.records import OutRecord
from edgecloud.sync.route import Router
from edgecloud.sync.settings import BridgeSettings
from edgecloud.sync.spool import Spool

log = logging.getLogger("edgecloud.sync.bridge")

PRODUCE_CHUNK = 5000
REPLAY_BACKOFF_S = 1.0


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        stop: threading.Event | None = None,
        *,
        tune_gc: bool = False,
    ) -> None:
        self.settings = settings
        self._tune_gc = tune_gc  # the CLI's bridge owns its process; tests' bridges do not
        self.stop_event = stop or threading.Event()
        self.metrics = BridgeMetrics()
        self.router = Router(settings.kafka_topic_prefix)
        self.spool = Spool(
            settings.node_spool_dir,
            segment_bytes=settings.spool_segment_bytes,
            memory_bytes=settings.spool_memory_bytes,
        )
        rec = self.spool.recovery
        log.info(
            "spool recovered",
            extra={
                "spool_dir": str(self.spool.dir),
                "pending": rec.pending,
                "torn_bytes": rec.torn_bytes,
                "segments": rec.segments,
            },
        )
        self._conf = producer_config(
            settings.kafka_connection(),
            linger_ms=settings.kafka_linger_ms,
            compression=settings.kafka_compression,
            queue_messages=settings.kafka_queue_messages,
        )
        self._generation = 0
        self.producer = self._new_producer()
        self._replay_at: float | None = None
        self._producer_full = False
        self._started = time.monotonic()
        self._trace_every = settings.trace_sample
        self._traced: dict[int, tuple[str, str]] = {}  # spool seq -> (trace id, device id)
        self.accepting = True
        self._bp_since: float | None = None
        self.subscriber: Subscriber | None = None
        self.http: HttpServer | None = None

    # --- producer ----------------------------------------------------------------------
    def _new_producer(self) -> KafkaProducer:
        gen = self._generation

        def on_delivery(seq: int, err: DeliveryError | None) -> None:
            if gen == self._generation:
                self._delivered(seq, err)

        return KafkaProducer(self._conf, on_delivery)

    def _delivered(self, seq: int, err: DeliveryError | None) -> None:
        if err is None:
            if not seq % DELIVERY_SAMPLE:
                at = self.spool.appended_at(seq)
                if at is not None:
                    self.metrics.delivery_seconds.observe(time.time() - at)
            self.spool.ack(seq)
            self.metrics.counts["processed"] += 1
            if self._traced and seq in self._traced:
                trace, device = self._traced.pop(seq)
                log_hop(log, "bridge.acked", trace, device, None, self.settings.node_id)
            return
        self.metrics.counts["kafka_errors"] += 1
        if err.fatal:
            self.producer.fatal_error = self.producer.fatal_error or err.message
            return
        if err.too_large and err.topic != self.router.dead_topic:
            detail = f"Kafka refused the record: {err.message}"
            dead = self.router.dead(err.topic, err.value, "kafka_too_large", detail)
            self._append([dead])
            self.spool.ack(seq)
            return
        log.warning("kafka delivery failed; replaying", extra={"kafka_error": err.message})
        if self._replay_at is None:
            self._replay_at = time.monotonic() + REPLAY_BACKOFF_S

    def _rebuild(self) -> None:
        log.error("rebuilding kafka producer", extra={"kafka_error": self.producer.fatal_error})
        self._generation += 1
        self.producer.abandon()
        self.producer = self._new_producer()
        self.spool.rewind()
        self.metrics.counts["producer_rebuilds"] += 1
        self._replay_at = None

    def _pump(self) -> None:
        """Hand spooled records to the producer until it is full or nothing is left."""
        if self._replay_at is not None:
            if self.producer.in_queue() > 0 or time.monotonic() < self._replay_at:
                return
            self.spool.rewind()
            self._replay_at = None
        self._producer_full = False
        items = self.spool.next_batch(PRODUCE_CHUNK)
        produce = self.producer.produce
        for i, (seq, rec) in enumerate(items):
            try:
                produce(seq, rec.topic, rec.key, rec.value, rec.headers)
            except Backpressure:
                self.spool.push_back(items[i:])
                self._producer_full = True
                self.metrics.producer_full.inc()
                return
            except TransportError as exc:
                self.spool.push_back(items[i:])
                log.warning("kafka produce failed", extra={"error": str(exc)})
                self._replay_at = self._replay_at or time.monotonic() + REPLAY_BACKOFF_S
                return

    def _kafka_busy(self) -> bool:
        """Whether Kafka can make progress now, so the loop should come back within 2 ms.

        With every broker down a 2 ms loop burned ~6 % of a core for nothing; the longer wait
        costs no latency (an MQTT message ends it at once) and a delivery clears
        ``brokers_down``."""
        pending = self.spool.unproduced > 0 or self.producer.in_queue() > 0
        return pending and not self.producer.brokers_down

    def _maybe_pump(self) -> None:
        if not self._producer_full or self.producer.in_queue() < self.settings.kafka_queue_messages:
            self._pump()

    # --- ingest ------------------------------------------------------------------------
    def _append(self, records: list[OutRecord]) -> None:
        first = self.spool.append(records)
        self.metrics.counts["events_in"] += len(records)
        if self._trace_every:
            self._trace(first, records)

    def _trace(self, first: int, records: list[OutRecord]) -> None:
        """Log the sampled readings spooled (and remember them for their Kafka ack)."""
        topic = self.router.topics["reading"]
        for i, rec in enumerate(records):
            if rec.topic != topic:
                continue
            eid = next((v for k, v in rec.headers if k == "event_id"), None)
            if eid is None:
                continue
            trace = event_trace_id(eid)
            if sampled(trace, self._trace_every):
                device = rec.key.decode("utf-8", "replace")
                log_hop(log, "bridge.spooled", trace, device, None, self.settings.node_id)
                if len(self._traced) < 100_000:  # bounded while Kafka is away
                    self._traced[first + i] = (trace, device)

    def _ingest(self, msgs: list[InboundMessage]) -> None:
        records: list[OutRecord] = []
        route = self.router.route
        for m in msgs:
            records.extend(route(m.topic, m.payload))
        dead = self.router.dead_topic
        self.metrics.counts["dead_letters"] += sum(1 for r in records if r.topic == dead)
        self._append(records)
        # Kafka may take the records while the disk syncs: the GIL is free during fdatasync and
        # a crash before the sync only means a redelivery (the MQTT acks below wait for it).
        self._maybe_pump()
        t0 = time.perf_counter()
        self.spool.sync()  # durable BEFORE the acks
        self.metrics.sync_seconds.observe(time.perf_counter() - t0)
        if self.subscriber is not None:
            self.subscriber.ack_all(msgs)  # one write for the whole batch
        self.metrics.counts["received"] += len(msgs)

    def _take(self, sub: Subscriber, wait_s: float) -> list[InboundMessage]:
        first = sub.get(timeout=wait_s)
        if first is None:
            return []
        if self.settings.batch_size == 1:
            return [first]
        rest = sub.get_batch(self.settings.batch_size - 1, self.settings.batch_window_ms / 1000)
        return [first, *rest]

    def _update_accepting(self) -> None:
        over = self.spool.unacked_bytes >= self.settings.spool_max_bytes
        now = time.monotonic()
        if over and self.accepting:
            log.warning(
                "spool budget full: holding MQTT acks",
                extra={"spool_bytes": self.spool.unacked_bytes},
            )
            self._bp_since = now
        elif not over and not self.accepting:
            log.info("spool below budget: accepting again")
            if self._bp_since is not None:
                self.metrics.backpressure.inc(now - self._bp_since)
            self._bp_since = None
        self.accepting = not over

    # --- housekeeping ------------------------------------------------------------------
    def heartbeat(self) -> None:
        rin, rout = self.metrics.refresh_rates()
        data = HeartbeatData(
            role="bridge",
            spool_depth=self.spool.unacked_records,
            counters=dict(self.metrics.counts),
            uptime_s=round(time.monotonic() - self._started, 3),
            spool_bytes=self.spool.unacked_bytes,
            spool_oldest_age_s=round(self.spool.oldest_age_s(), 3),
            ingest_rate=round(rin, 1),
            delivery_rate=round(rout, 1),
            kafka_up=not self.producer.brokers_down,
            accepting=self.accepting,
        )
        ev = heartbeat_event(self.settings.node_id, data)
        node = self.settings.node_id.encode()
        headers = [
            ("event_id", str(ev.event_id).encode()),
            ("schema", ev.schema_.encode()),
            ("node_id", node),
        ]
        self._append(
            [OutRecord(self.router.topics["heartbeat"], node, ev.to_json().encode(), headers)]
        )
        self.spool.sync()

    def refresh_gauges(self) -> None:
        m, s = self.metrics, self.spool
        m.depth.set(s.unacked_records)
        m.depth_bytes.set(s.unacked_bytes)
        m.disk_bytes.set(s.disk_bytes)
        m.disk_budget.set(self.settings.spool_max_bytes)
        m.oldest_age.set(s.oldest_age_s())
        m.kafka_up.set(0 if self.producer.brokers_down else 1)
        m.accepting.set(1 if self.accepting else 0)
        m.sync_counters()

    def health(self) -> dict[str, Any]:
        sub = self.subscriber
        mqtt_ok = sub is not None and sub.connected.is_set()
        return {
            "ok": mqtt_ok,
            "node_id": self.settings.node_id,
            "mqtt_connected": mqtt_ok,
            "kafka_up": not self.producer.brokers_down,
            "accepting": self.accepting,
            "spool_depth": self.spool.unacked_records,
            "spool_bytes": self.spool.unacked_bytes,
            "spool_oldest_age_s": round(self.spool.oldest_age_s(), 3),
            "counters": dict(self.metrics.counts),
        }

    # --- run ---------------------------------------------------------------------------
    def mqtt_config(self) -> MqttConfig:
        """The edge broker connection, from the settings tree alone."""
        return config_from_settings(self.settings)

    def _connect(self) -> Subscriber:
        s = self.settings
        config = self.mqtt_config()
        delay = 0.5
        while not self.stop_event.is_set():
            sub = make_subscriber(config, [EVENTS_SUBSCRIPTION], client_id=s.client_id)
            try:
                sub.start()
                return sub
            except TransportError as exc:
                log.warning("mqtt not reachable; retrying", extra={"error": str(exc)})
                self.stop_event.wait(delay)
                delay = min(delay * 2, 10.0)
        raise TransportError("stopped before MQTT connected")

    def _ensure_topics(self) -> None:
        names = [*self.router.topics.values(), self.router.dead_topic]
        try:
            ensure_topics(self.settings.kafka_connection(), names)
        except TransportError as exc:  # Kafka may be down: auto-create or a later start does it
            log.warning("could not ensure kafka topics", extra={"error": str(exc)})

    def run(self) -> None:
        s = self.settings
        if s.bridge_http_port:
            self.http = HttpServer(
                s.bridge_http_host, s.bridge_http_port, self.metrics, self.health
            )
            self.http.start()
        self._ensure_topics()
        self.subscriber = sub = self._connect()
        if self._tune_gc:  # core/gctune.py: a full collection of the start-up heap took ~100 ms
            tune_gc()
        log.info("bridge running", extra={"node_id": s.node_id, "client_id": s.client_id})
        next_beat = time.monotonic()
        next_house = time.monotonic() + 1.0
        try:
            while not self.stop_event.is_set():
                self._update_accepting()
                busy = self._kafka_busy()
                if self.accepting:
                    msgs = self._take(sub, 0.002 if busy else 0.05)
                    if msgs:
                        self._ingest(msgs)
                elif not busy:
                    self.producer.poll(0.05)
                self._maybe_pump()
                self.producer.poll(0.01 if self._producer_full and not self.accepting else 0)
                if self.producer.fatal_error is not None:
                    self._rebuild()
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + s.heartbeat_interval_s
                    self.heartbeat()
                if now >= next_house:
                    next_house = now + 1.0
                    self.spool.checkpoint()
                    self.spool.collect()
                    self.refresh_gauges()
        finally:
            self.close()

    def close(self) -> None:
        sub, self.subscriber = self.subscriber, None
        if sub is not None:
            sub.stop()
        # delivery reports for what is in flight spare duplicates after a restart; with every
        # broker down none can come, and the spool keeps the records anyway
        left = self.producer.flush(1.0 if self.producer.brokers_down else 10.0)
        self.spool.close()
        if self.http is not None:
            self.http.stop()
        log.info(
            "bridge stopped", extra={"undelivered": left, "spool_depth": self.spool.unacked_records}
        )
