"""The benchmarks' load generator: QoS 1 PUBLISH packets from one thread, many per write.

Devices are other machines; in a benchmark they share two cores with what is measured. With
the MQTT client's own publisher (an I/O thread, a ``PublishInfo`` and a condition hand-over per
message) the two publisher processes of ``bench edge`` took 0.7 of the machine's two cores at
16,000 messages/s, CPU that Mosquitto, the agent and Postgres could not use. ``blast`` keeps
what matters of that publisher (QoS 1, the broker's receive maximum as the in-flight window,
every message acknowledged before it returns, refusals raised) and drops the rest: one thread,
packets made of prebuilt parts, a chunk of them per ``send``, PUBACKs read between sends.

Each message is ``(topic, head, tail)``: the payload is ``head + stamp() + tail``, with the
stamp (the publish time) taken once per chunk, just before the chunk is written. A lost
connection fails the run (``TransportError``): a benchmark does not reconnect.
"""

from __future__ import annotations

import contextlib
import select
import struct
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgecloud.adapters import mqttwire as wire
from edgecloud.adapters.mqtt import MqttConfig
from edgecloud.adapters.mqtt_native import _handshake, read_pubacks, refusal
from edgecloud.core.errors import TransportError

Message = tuple[str, bytes, bytes]  # topic, payload before the stamp, payload after it
CHUNK = 256  # messages per write at most
_MID = struct.Struct("!H")


@dataclass(frozen=True)
class Packets:
    items: list[tuple[int, bytes, bytes]]  # (packet id, packet up to the stamp, after it)
    stamp: Callable[[], bytes]  # the publish time, always ``stamp_len`` bytes
    stamp_len: int

    def __len__(self) -> int:
        return len(self.items)


def prebuild(messages: Sequence[Message], stamp: Callable[[], bytes]) -> Packets:
    """The PUBLISH packets of ``messages``, all but the stamp.

    Packet ids are assigned in order (1..65,535, then again); ``blast`` never has two equal
    ids in flight.
    """
    stamp_len = len(stamp())
    head_byte = bytes([(wire.PUBLISH << 4) | 0x02])  # QoS 1
    topics: dict[str, bytes] = {}
    out = []
    for i, (topic, head, tail) in enumerate(messages):
        t = topics.get(topic)
        if t is None:
            raw = topic.encode("utf-8")
            t = topics[topic] = _MID.pack(len(raw)) + raw
        mid = i % 65_535 + 1
        body_len = len(t) + 2 + 1 + len(head) + stamp_len + len(tail)
        out.append(
            (mid, b"".join((head_byte, wire.varint(body_len), t, _MID.pack(mid), b"\x00", head)),
             tail)
        )  # fmt: skip
    return Packets(out, stamp, stamp_len)


def blast(
    config: MqttConfig,
    packets: Packets,
    *,
    rate: float | None = None,
    client_id: str | None = None,
    chunk: int = CHUNK,
    timeout_s: float = 600.0,
) -> int:
    """Publish ``prebuild``'s packets at ``rate`` a second (None: as fast as the window allows)
    and return once the broker acknowledged every one; returns how many were published."""
    conn, ack, early = _handshake(
        config, client_id or f"blast-{uuid.uuid4().hex[:12]}", clean_start=True,
        session_expiry_s=0,
    )  # fmt: skip
    try:
        if early:
            raise TransportError("MQTT broker sent PUBLISH to a publisher")
        window = max(1, ack.receive_maximum)
        inflight: set[int] = set()
        items, stamp, stamp_len = packets.items, packets.stamp, packets.stamp_len
        n = len(items)
        sent = 0
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        sock = conn.sock
        while sent < n or inflight:
            now = time.monotonic()
            if now > deadline:
                raise TransportError(f"blast: {len(inflight)} PUBACKs missing after {timeout_s}s")
            due = n if not rate else min(n, int((now - t0) * rate) + 1)
            k = min(due - sent, window - len(inflight), chunk)
            if k > 0:
                batch = items[sent : sent + k]
                clash = next((j for j, p in enumerate(batch) if p[0] in inflight), None)
                if clash is not None:
                    batch = batch[:clash]  # that id is still in flight: wait for its PUBACK
                k = len(batch)
                if batch:
                    s = stamp()
                    if len(s) != stamp_len:
                        raise ValueError(f"stamp {s!r} is not {stamp_len} bytes long")
                    conn.send(b"".join([x for p in batch for x in (p[1], s, p[2])]))
                    inflight.update(p[0] for p in batch)
                    sent += k
            # wait for PUBACKs, or until the next message is due
            if sent < n and k > 0 and len(inflight) < window:
                wait = 0.0
            elif sent < n and rate and len(inflight) < window:
                wait = max(0.0, t0 + sent / rate - time.monotonic())
            else:
                wait = 1.0
            ready, _, _ = select.select([sock], [], [], wait)
            if ready:
                acks, error = read_pubacks(conn)
                for mid, reason in acks:
                    if reason >= 0x80:
                        raise refusal(reason)
                    inflight.discard(mid)
                if error is not None:
                    raise error
        return sent
    finally:
        with contextlib.suppress(TransportError):
            conn.send(wire.DISCONNECT_PACKET)
        conn.close()
