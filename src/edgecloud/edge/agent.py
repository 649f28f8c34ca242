"""The edge agent process: MQTT in, validate, infer, commit, ack, events out.

One batch loop (the main thread) does, per micro-batch of at most ``batch_size`` messages
gathered within ``batch_window_ms``:

1. classify (``batch.classify``): parse, dead letters, duplicates, out-of-order;
2. run the active model once on the batch's new readings (failures: dead letters);
3. ONE transaction: outbox row, readings with results, device marks, dead letters;
4. THEN acknowledge every message of the batch (PUBACK), so a crash before the commit makes
   the broker redeliver, and a crash after it finds the readings stored (duplicates);
5. THEN hand the batch's reading events to the outbox thread.

Beside it: the outbox thread, a housekeeping thread (heartbeats, retention) and the local HTTP
server (``edge/http.py``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc

from edgecloud.adapters.mqtt import (
    InboundMessage,
    config_from_settings,
    make_publisher,
    make_subscriber,
)
from edgecloud.core.errors import TransportError
from edgecloud.core.events import HeartbeatData, InferenceResult, heartbeat_event
from edgecloud.core.gctune import tune_gc
from edgecloud.core.readings import broker_message_limit
from edgecloud.core.topics import (
    TELEMETRY_SUBSCRIPTION,
    device_shard,
    events_topic,
    telemetry_device,
)
from edgecloud.core.trace import log_hop, sampled, trace_id
from edgecloud.core.wire import DeadLetter
from edgecloud.core.wire.encode import reading_event_text
from edgecloud.edge.batch import Key, Plan, classify
from edgecloud.edge.inference.port import InferenceFailure
from edgecloud.edge.live_config import LiveConfig
from edgecloud.edge.metrics import AgentMetrics, Counters
from edgecloud.edge.models.holder import ModelHolder, load_into
from edgecloud.edge.outbox import Outbox, OutboxBatch, Publish
from edgecloud.edge.settings import EdgeSettings
from edgecloud.edge.store import Prepared, Store
from edgecloud.edge.tensor_keep import keep_tensors

log = logging.getLogger(__name__)
T = TypeVar("T")
# stage A -> writer: messages, plan, start time, rendered rows, reading events
_Handover = tuple[Sequence[InboundMessage], Plan, float, Prepared | None, list[str]]


class Agent:
    def __init__(
        self, settings: EdgeSettings, inference_settings: Any = None, *, tune_gc: bool = False
    ) -> None:
        self.settings = settings
        self._tune_gc = tune_gc  # the CLI's agent owns its process; tests' agents do not
        # the sub-components' configs, built once from the one settings tree (edge/settings.py)
        self.inference_settings = inference_settings or settings.inference_settings()
        self.model_agent_settings = settings.model_agent_settings()
        self.device_agent_settings = settings.device_agent_settings()
        self.counters = Counters()
        self.holder = ModelHolder()
        self.metrics = AgentMetrics(self.counters, self._gauges)
        self.started_at = time.monotonic()
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.last_seqs: dict[str, int] = {}
        self.store = Store(settings.database_url)
        cfg = config_from_settings(settings)
        self.subscriber = make_subscriber(
            cfg, [TELEMETRY_SUBSCRIPTION], client_id=settings.client_id
        )
        self._shard = settings.shard
        self.publisher = make_publisher(cfg, client_id=settings.client_id + "-pub")
        self.outbox = Outbox(
            self.store,
            Publish(self._publish_text, lambda infos, t: self.publisher.wait(infos, t)),
            settings.node_id,
            events_per_message=settings.events_per_message,
            max_message_chars=broker_message_limit(settings.max_payload_bytes),
            on_published=lambda n: self.counters.add(events_published=n),
        )
        self._housekeeping = threading.Thread(
            target=self._housekeep, name="housekeeping", daemon=True
        )
        self._http: Any = None
        # stage A -> stage B; two batches in flight at most (the broker's in-flight window of
        # unacknowledged messages is the real bound)
        self._writes: queue.Queue[_Handover | None] = queue.Queue(maxsize=2)
        self._in_flight: dict[Key, tuple[datetime, dict[str, Any]]] = {}
        self._writer_thread = threading.Thread(target=self._writer, name="writer", daemon=True)
        self.model_agent: Any = None  # follows the cloud's desired model (issue 6)
        self.decisions: Any = None  # anomaly / escalation decisions via Dapr (edge/decisions.py)
        if settings.dapr_grpc_port:
            from edgecloud.adapters.dapr import DaprConfig
            from edgecloud.edge.decisions import DecisionPublisher

            dapr = DaprConfig(settings.dapr_http_port, settings.dapr_grpc_port)
            self.decisions = DecisionPublisher(
                dapr, settings.dapr_pubsub, settings.node_id, self.counters
            )
        self.device_agent: Any = None  # applies the registry's devices to the broker (issue 16)
        # thresholds and batch settings followed live from a Dapr configuration store
        self.live = LiveConfig(self.counters, settings.batch_size, settings.batch_window_ms)
        self.config_watch: Any = None
        if settings.dapr_grpc_port and settings.dapr_config_store:
            from edgecloud.adapters.dapr import ConfigurationWatch, DaprConfig
            from edgecloud.edge import live_config

            self.config_watch = ConfigurationWatch(
                DaprConfig(settings.dapr_http_port, settings.dapr_grpc_port),
                settings.dapr_config_store,
                live_config.KEYS,
                self.live.apply,
                self.live.watch_failed,
                metadata={"pgNotifyChannel": live_config.NOTIFY_CHANNEL},
            )

    # --- state for heartbeats / healthz ----------------------------------------------------
    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def mqtt_connected(self) -> bool:
        return self.subscriber.connected.is_set() and self.publisher.connected

    def _gauges(self) -> dict[str, float]:
        gauges = {
            "outbox_pending_events": float(self.outbox.pending_events),
            "mqtt_pending_messages": float(self.subscriber.pending()),
            "mqtt_connected": 1.0 if self.mqtt_connected else 0.0,
            "model_loaded": 1.0 if self.holder.backend is not None else 0.0,
            "uptime_seconds": self.uptime_s,
        }
        if self.config_watch is not None:
            gauges.update(self.live.gauges(getattr(self.holder.backend, "manifest", None)))
        return gauges

    def heartbeat(self) -> HeartbeatData:
        st = self.holder.status
        model = {"state": st.state, "source": st.source, "error": st.error}
        return HeartbeatData.model_validate(
            {
                "labels": self.settings.labels,
                "active_models": self.holder.active_models(),
                "spool_depth": self.outbox.pending_events,
                "counters": self.counters.as_dict(),
                "uptime_s": round(self.uptime_s, 3),
                "role": "agent",
                "model": model,
                "mqtt_connected": self.mqtt_connected,
            }
        )

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Everything but the batch loop: model, database state, publisher, outbox, HTTP."""
        s = self.settings
        if s.model:
            load_into(self.holder, Path(s.model), s.operator_public_keys, self.inference_settings)
        self.last_seqs = self._retry(self.store.last_seqs)
        if s.http_port:
            from edgecloud.edge.http import HttpServer

            self._http = HttpServer(self, s.http_host, s.http_port)
            self._http.start()
        self._retry(self.publisher.start)
        self.outbox.start()
        self._retry(self.outbox.recover)
        self._writer_thread.start()
        if self.decisions is not None:
            self.decisions.start()
        if self.config_watch is not None:
            self.config_watch.start()
        self._retry(self.subscriber.start)
        from edgecloud.edge.models.agent import maybe_start

        self.model_agent = maybe_start(
            self.model_agent_settings, self.holder, self._publish_text, self.inference_settings
        )
        from edgecloud.edge import device_agent

        def device_agent_start() -> Any:
            return device_agent.maybe_start(self.device_agent_settings)

        self.device_agent = self._retry(device_agent_start)
        self._housekeeping.start()
        if self._tune_gc:  # core/gctune.py
            tune_gc()
        self.ready.set()
        log.info("edge agent running", extra={"node_id": s.node_id, "client_id": s.client_id})

    def run(self) -> None:
        """Start, then run the batch loop until ``stop()``."""
        try:
            self.start()
            live = self.live  # batch size and window re-read per batch (live configuration)
            while not self.stopping.is_set() and self._writer_thread.is_alive():
                window = live.batch_window_ms / 1000.0
                msgs: Sequence[InboundMessage] = self.subscriber.get_batch(
                    live.batch_size, window or 0.001
                )
                if msgs and self._shard is not None:
                    msgs = self._own(msgs)
                if msgs:
                    self.process(msgs)
        finally:
            self._drain_writer()
            self.shutdown()

    def stop(self) -> None:
        self.stopping.set()

    def _own(self, msgs: Sequence[InboundMessage]) -> Sequence[InboundMessage]:
        """Keep this node's devices (``device_shard``); ack and count the others."""
        shard, shards = self._shard or (1, 1)
        mine, foreign = [], []
        for m in msgs:
            device = telemetry_device(m.topic)
            if device is None or device_shard(device, shards) == shard:
                mine.append(m)
            else:
                foreign.append(m)
        self.subscriber.ack_all(foreign)
        if len(mine) < len(msgs):
            self.counters.add(foreign=len(msgs) - len(mine))
        return mine

    def shutdown(self) -> None:
        self.stopping.set()
        for step in (
            self.subscriber.stop,
            self.outbox.stop,
            self._stop_decisions,
            self._stop_config_watch,
            self._stop_http,
            self.publisher.stop,
            self._stop_model_agent,
            self._stop_device_agent,
            self.holder.close,
            self.store.close,
        ):
            try:
                step()
            except Exception:  # process edge: shut the rest down regardless
                log.exception("shutdown step failed")
        log.info("edge agent stopped", extra={"counters": self.counters.as_dict()})

    def _drain_writer(self) -> None:
        """Let the writer commit and acknowledge what stage A handed over, then end it."""
        if self._writer_thread.is_alive():
            self._writes.put(None)
            self._writer_thread.join(30.0)

    def _stop_model_agent(self) -> None:
        if self.model_agent is not None:
            self.model_agent.stop()

    def _stop_decisions(self) -> None:
        if self.decisions is not None:
            self.decisions.stop()

    def _stop_config_watch(self) -> None:
        if self.config_watch is not None:
            self.config_watch.stop()

    def _stop_device_agent(self) -> None:
        if self.device_agent is not None:
            self.device_agent.stop()

    def _stop_http(self) -> None:
        if self._http is not None:
            self._http.stop()

    def _retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` until it succeeds (transient DB / broker errors) or the agent stops."""
        delay = 0.5
        while True:
            try:
                return fn()
            except (TransportError, OSError, sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
                self.counters.add(db_errors=1)
                log.warning(
                    "retrying",
                    extra={
                        "step": getattr(fn, "__name__", "?"),
                        "error": str(exc)[:300],
                        "retry_in_s": delay,
                    },
                )
            if self.stopping.wait(delay):
                raise TransportError("stopped while retrying")
            delay = min(delay * 2, 10.0)

    # --- one batch: stage A (this thread) ---------------------------------------------------
    def process(self, msgs: Sequence[InboundMessage]) -> None:
        """Classify and infer here; the writer thread commits, acks and hands events over.

        The two stages overlap (batch N+1 is validated and inferred while batch N commits).
        Keys of batches handed over but not yet committed are looked up in memory, so a replay
        across that gap is still seen as one.
        """
        t0 = time.monotonic()

        def lookup(keys: Sequence[Key]) -> Any:
            found = {k: v for k in keys if (v := self._in_flight.get(k)) is not None}
            rest = [k for k in keys if k not in found]
            if rest:
                found.update(self._retry(lambda: self.store.lookup(rest)))
            return found

        plan = classify(
            msgs, self.last_seqs, lookup, self.settings.max_payload_bytes, self.settings.ts_window
        )
        self._infer(plan)
        keep_tensors(plan.accepted, self.settings.tensor_store, self.settings.event_tensors)
        for a in plan.accepted:
            r = a.reading
            self._in_flight[(r.device_id, r.seq)] = (r.ts, r.values)
            if r.seq > self.last_seqs.get(r.device_id, -1):
                self.last_seqs[r.device_id] = r.seq
        # rendered here, not in the writer: this thread has time while the writer waits for
        # Postgres, and the writer's own Python work is what bounds the rate under load
        prepared = self.store.prepare(plan)
        node = self.settings.node_id
        events = [
            reading_event_text(
                node, a.reading.device_id, a.reading.seq, a.ts_text, a.values_json,
                a.inference_json, a.event_tensors_json,
            )
            for a in plan.accepted
        ]  # fmt: skip
        self._writes.put((msgs, plan, t0, prepared, events))

    # --- stage B: the writer thread -----------------------------------------------------------
    def _writer(self) -> None:
        while True:
            item = self._writes.get()
            if item is None:
                return
            try:
                self._commit(*item)
            except TransportError:
                return  # stopping: nothing acknowledged, the broker redelivers these batches
            except Exception:  # process edge: a bug here must not leave acks hanging silently
                log.exception("batch commit failed; stopping")
                self.stop()
                return

    def _commit(
        self,
        msgs: Sequence[InboundMessage],
        plan: Plan,
        t0: float,
        prepared: Prepared | None,
        events: list[str],
    ) -> None:
        written = self._retry(lambda: self.store.write(plan, prepared))
        committed = time.time()
        self.subscriber.ack_all(msgs)
        for a in plan.accepted:
            self._in_flight.pop((a.reading.device_id, a.reading.seq), None)
        if self.settings.trace_sample:
            self._trace(plan)
        self._count(msgs, plan, written.inserted)
        self.metrics.receive_to_commit_seconds.observe_many(
            [committed - m.received_at for m in msgs]
        )
        self.metrics.batch_seconds.observe(time.monotonic() - t0)
        if written.batch_id is not None:
            self.outbox.put(OutboxBatch(written.batch_id, events, committed))
        if self.decisions is not None:
            self.decisions.offer(plan.accepted, events)

    def _trace(self, plan: Plan) -> None:
        every, node = self.settings.trace_sample, self.settings.node_id
        for a in plan.accepted:
            r = a.reading
            trace = trace_id(r.device_id, r.seq)
            if sampled(trace, every):
                at = datetime.fromtimestamp(a.received_at, UTC).isoformat()
                log_hop(log, "edge.stored", trace, r.device_id, r.seq, node, received_at=at)

    def _count(self, msgs: Sequence[InboundMessage], plan: Plan, inserted: int) -> None:
        self.counters.add(
            received=len(msgs),
            processed=inserted,
            batches=1,
            duplicates=plan.duplicates + (len(plan.accepted) - inserted),
            out_of_order=plan.out_of_order,
            inference_failures=plan.inference_failures,
            inferred=sum(1 for a in plan.accepted if a.inference is not None),
        )
        for d in plan.dead_letters:
            self.counters.dead(d.reason)
        if plan.dead_letters:
            log.info(
                "dead letters",
                extra={
                    "reasons": sorted({d.reason for d in plan.dead_letters}),
                    "count": len(plan.dead_letters),
                },
            )

    def _infer(self, plan: Plan) -> None:
        if not plan.accepted or self.holder.backend is None:
            return
        t0 = time.monotonic()
        readings = [a.reading for a in plan.accepted]
        try:
            outcomes = self.holder.infer(readings)
        except Exception as exc:  # a backend bug must not stop ingest: readings still stored
            log.exception("inference failed on a whole batch")
            failure = InferenceFailure("model_error", f"{type(exc).__name__}: {exc}")
            outcomes = [failure] * len(readings)
        self.metrics.inference_seconds.observe(time.monotonic() - t0)
        if outcomes is None:
            return
        if self.config_watch is not None:  # thresholds of the live configuration
            outcomes = self.live.decide(outcomes, getattr(self.holder.backend, "manifest", None))
        for a, o in zip(plan.accepted, outcomes, strict=True):
            if isinstance(o, InferenceResult):
                a.inference = o
                a.inference_json = o.json_text()
            else:
                plan.inference_failures += 1
                r = a.reading
                plan.dead_letters.append(
                    DeadLetter(
                        a.topic,
                        a.payload,
                        f"inference.{o.reason}",
                        o.detail,
                        a.received_at,
                        r.device_id,
                        r.seq,
                    )
                )

    # --- housekeeping thread ---------------------------------------------------------------
    def _housekeep(self) -> None:
        s = self.settings
        next_hb = time.monotonic()
        next_ret = time.monotonic() + min(s.retention_interval_s, 5.0)
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= next_hb:
                next_hb = now + s.heartbeat_interval_s
                self._send_heartbeat()
            if s.retention_hours > 0 and now >= next_ret:
                next_ret = now + s.retention_interval_s
                self._retention()
            self.stopping.wait(max(0.05, min(next_hb, next_ret) - time.monotonic()))

    def _send_heartbeat(self) -> None:
        try:
            ev = heartbeat_event(self.settings.node_id, self.heartbeat())
            info = self._publish_text(
                events_topic(self.settings.node_id, "heartbeat"), ev.to_json()
            )
            self.publisher.wait([info], 10.0)
        except Exception as exc:  # a missed heartbeat is logged, the next one follows
            log.warning("heartbeat not sent", extra={"error": str(exc)})

    def _retention(self) -> None:
        cutoff = datetime.now(UTC) - timedelta(hours=self.settings.retention_hours)
        try:
            n = self.store.delete_older_than(cutoff, self.settings.retention_chunk)
        except Exception as exc:  # retention retries at its next interval
            log.warning("retention failed", extra={"error": str(exc)[:300]})
            return
        if n:
            log.info("retention deleted readings", extra={"deleted": n})

    def _publish_text(self, topic: str, text: str) -> Any:
        return self.publisher.publish(topic, text.encode(), qos=1)
