"""What fault tests and ``bench bridge`` use to prove nothing was lost: a deterministic event
stream and a tally of what came out of Kafka (unique ids, duplicates, per-key order).

Events are readings of ``devices`` devices with ``seq`` 0..n-1 each; their ``event_id`` is the
contract's deterministic one, so the expected set is known without recording the publisher.
Order: for each key, the *first* occurrence of each event must come in increasing ``seq``
(a replay after a crash re-sends a suffix: those are duplicates, not reordering).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from edgecloud.core.events import SCHEMA_V1, reading_event_id

EVENT_BYTES = 200


def device_name(i: int, tag: str = "") -> str:
    return f"{tag}dev-{i:04d}"


def reading_payload(node: str, device: str, seq: int, pub_ns: int = 0) -> bytes:
    """One reading event of about ``EVENT_BYTES`` bytes; ``pub_ns`` is the publish time."""
    ev = {
        "schema": SCHEMA_V1,
        "event_id": str(reading_event_id(device, seq)),
        "type": "reading",
        "node_id": node,
        "device_id": device,
        "ts": "2026-11-22T10:00:00.123Z",
        "data": {"seq": seq, "values": {"t": 21.5}, "pub_ns": pub_ns},
    }
    raw = json.dumps(ev, separators=(",", ":"))
    pad = max(0, EVENT_BYTES - len(raw) - len(',"pad":""'))
    ev["data"]["pad"] = "x" * pad  # type: ignore[index]
    return json.dumps(ev, separators=(",", ":")).encode()


def stream(devices: int, per_device: int, tag: str = "") -> Iterator[tuple[str, int]]:
    """(device, seq) in publish order: round-robin over devices, seq increasing."""
    for seq in range(per_device):
        for d in range(devices):
            yield device_name(d, tag), seq


def expected_ids(devices: int, per_device: int, tag: str = "") -> set[str]:
    return {str(reading_event_id(dev, seq)) for dev, seq in stream(devices, per_device, tag)}


@dataclass
class Tally:
    """Counts what Kafka holds; with ``expected`` set, other events are ignored (``foreign``)."""

    expected: set[str] | None = None
    foreign: int = 0
    seen: set[str] = field(default_factory=set)
    messages: int = 0
    duplicates: int = 0
    order_violations: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_pub_ms: float = 0.0
    last_append_ms: float = 0.0
    _last_seq: dict[str, int] = field(default_factory=dict)

    def add(self, key: bytes | None, value: bytes, log_append_ms: int | None = None) -> None:
        ev = json.loads(value)
        eid = ev["event_id"]
        if self.expected is not None and eid not in self.expected:
            self.foreign += 1
            return
        self.messages += 1
        if eid in self.seen:
            self.duplicates += 1
            return
        self.seen.add(eid)
        data = ev.get("data") or {}
        seq = data.get("seq")
        k = (key or b"").decode()
        if isinstance(seq, int):
            if seq <= self._last_seq.get(k, -1):
                self.order_violations += 1
            self._last_seq[k] = max(seq, self._last_seq.get(k, -1))
        pub_ns = data.get("pub_ns")
        if log_append_ms is not None and isinstance(pub_ns, int) and pub_ns > 0:
            pub_ms = pub_ns / 1e6
            self.latencies_ms.append(log_append_ms - pub_ms)
            self.first_pub_ms = min(self.first_pub_ms or pub_ms, pub_ms)
            self.last_append_ms = max(self.last_append_ms, float(log_append_ms))

    def add_all(self, items: Iterable[tuple[bytes | None, bytes, int | None]]) -> Tally:
        for key, value, ts in items:
            self.add(key, value, ts)
        return self

    def complete(self) -> bool:
        return self.expected is not None and len(self.seen) >= len(self.expected)

    def lost(self, expected: set[str]) -> int:
        return len(expected - self.seen)

    def summary(self, expected: set[str]) -> dict[str, int]:
        return {
            "published": len(expected),
            "unique": len(self.seen & expected),
            "lost": self.lost(expected),
            "duplicates": self.duplicates,
            "order_violations": self.order_violations,
            "unexpected": len(self.seen - expected),
        }
