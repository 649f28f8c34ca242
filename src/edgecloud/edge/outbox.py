"""The outbox: reading events of committed batches go out here, after the DB commit.

The batch loop hands over each committed batch (``put``); a thread builds the events, publishes
them as JSON arrays of at most ``events_per_message`` events on
``edgecloud/{node_id}/events/reading`` (QoS 1), waits for the broker's PUBACKs and then sets
``published_at`` on the batches' outbox rows. A batch whose publish fails stays unpublished in
the database and is retried; at start, every unpublished batch is republished from the
database (``recover``). Event ids are derived from (device_id, seq), so a batch published
twice is still one reading downstream.

The queue is bounded: when the broker stops acknowledging, ``put`` blocks, the batch loop
stops consuming and MQTT backpressure reaches the devices' broker queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgecloud.core.errors import TransportError
from edgecloud.core.topics import events_topic
from edgecloud.core.wire.encode import chunked_arrays, reading_event_json
from edgecloud.edge.store import Store, StoredReading

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OutboxBatch:
    batch_id: int
    events: list[str]
    committed_at: float | None  # wall clock right after the commit returned


class Publish:
    """What the outbox needs of a publisher: publish QoS 1, then wait for all PUBACKs."""

    def __init__(
        self,
        publish: Callable[[str, str], object],
        wait: Callable[[Sequence[object], float], None],
    ) -> None:
        self.publish = publish
        self.wait = wait


def events_of(node_id: str, rows: Sequence[StoredReading]) -> list[str]:
    return [
        reading_event_json(node_id, r.device_id, r.seq, r.ts, r.values_json, r.inference_json)
        for r in rows
    ]


class Outbox:
    def __init__(
        self,
        store: Store,
        publisher: Publish,
        node_id: str,
        *,
        events_per_message: int = 200,
        max_message_chars: int | None = None,
        max_batches: int = 64,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        self._pub = publisher
        self._topic = events_topic(node_id, "reading")
        self._node_id = node_id
        self._per_message = events_per_message
        self._max_chars = max_message_chars
        self._queue: queue.Queue[OutboxBatch | None] = queue.Queue(maxsize=max_batches)
        self._on_published = on_published
        self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)
        self._pending_events = 0
        self._lock = threading.Lock()
        self.published_events = 0
        self.publish_errors = 0

    @property
    def pending_events(self) -> int:
        """Reading events handed over but not yet acknowledged by the broker."""
        return self._pending_events

    def start(self) -> None:
        self._thread.start()

    def recover(self) -> int:
        """Queue every batch the database holds as unpublished; returns the event count."""
        total = 0
        for batch_id, rows in self._store.unpublished():
            self.put(OutboxBatch(batch_id, events_of(self._node_id, rows), None))
            total += len(rows)
        if total:
            log.info("republishing unpublished reading events", extra={"events": total})
        return total

    def put(self, batch: OutboxBatch) -> None:
        with self._lock:
            self._pending_events += len(batch.events)
        self._queue.put(batch)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Publish what is queued (up to ``timeout_s``), then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _drain(self, first: OutboxBatch) -> tuple[list[OutboxBatch], bool]:
        batches, stop = [first], False
        while len(batches) < 32:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            batches.append(item)
        return batches, stop

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batches, stop = self._drain(first)
            delay = 0.5
            while True:
                try:
                    self._send(batches)
                    break
                except TransportError as exc:
                    self.publish_errors += 1
                    log.warning(
                        "reading events not acknowledged, retrying",
                        extra={"error": str(exc), "retry_in_s": delay},
                    )
                    time.sleep(delay)
                    delay = min(delay * 2, 10.0)

    def _send(self, batches: list[OutboxBatch]) -> None:
        infos = []
        events = 0
        for b in batches:
            for text, n in chunked_arrays(b.events, self._per_message, self._max_chars):
                infos.append(self._pub.publish(self._topic, text))
                events += n
        self._pub.wait(infos, 30.0)
        self._store.mark_published({b.batch_id: b.committed_at or 0.0 for b in batches})
        with self._lock:
            self._pending_events -= events
        self.published_events += events
        if self._on_published is not None:
            self._on_published(events)
