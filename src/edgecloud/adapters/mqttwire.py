"""MQTT 5 packets, as bytes: the subset edgecloud's native client speaks (pure; no I/O).

Client to broker: CONNECT, SUBSCRIBE, PUBLISH (QoS 0/1), PUBACK, PINGREQ, DISCONNECT.
Broker to client: CONNACK, SUBACK, PUBLISH, PUBACK, PINGRESP, DISCONNECT.

``Reader`` splits a byte stream into packets across reads; PUBLISH packets are decoded on the
hot path (topic, packet id, payload) and every other packet is returned whole for the client to
interpret. Topic aliases are never enabled (CONNECT sends no Topic Alias Maximum), so every
PUBLISH from the broker carries its topic name.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

MAX_REMAINING = 268_435_455  # the largest remaining length four length bytes can carry

# property identifiers used here (MQTT 5, section 2.2.2.2)
PROP_SESSION_EXPIRY = 0x11
PROP_RECEIVE_MAXIMUM = 0x21
PROP_MAXIMUM_PACKET_SIZE = 0x27
PROP_REASON_STRING = 0x1F
PROP_ASSIGNED_CLIENT_ID = 0x12
PROP_SERVER_KEEP_ALIVE = 0x13
PROP_TOPIC_ALIAS_MAXIMUM = 0x22

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"

CONNACK_REASONS = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8C: "bad authentication method",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x9F: "connection rate exceeded",
}


class ProtocolError(ValueError):
    """The broker sent bytes that are not a packet this client understands."""


def varint(n: int) -> bytes:
    """MQTT variable byte integer."""
    if not 0 <= n <= MAX_REMAINING:
        raise ValueError(f"variable byte integer out of range: {n}")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(value, position after it), or None when the integer is not complete in ``data``."""
    value = shift = 0
    for i in range(4):
        if pos + i >= len(data):
            return None
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise ProtocolError("variable byte integer longer than four bytes")


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _binary(raw)


def _binary(raw: bytes) -> bytes:
    if len(raw) > 0xFFFF:
        raise ValueError("MQTT strings are at most 65,535 bytes")
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connect(
    client_id: str,
    *,
    clean_start: bool,
    keepalive_s: int,
    username: str | None = None,
    password: str | None = None,
    session_expiry_s: int = 0,
    receive_maximum: int = 65_535,
) -> bytes:
    flags = 0x02 if clean_start else 0
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    props = b""
    if session_expiry_s:
        props += struct.pack("!BI", PROP_SESSION_EXPIRY, session_expiry_s)
    if receive_maximum != 65_535:
        props += struct.pack("!BH", PROP_RECEIVE_MAXIMUM, receive_maximum)
    body = b"\x00\x04MQTT\x05" + struct.pack("!BH", flags, keepalive_s) + varint(len(props))
    body += props + _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _binary(password.encode("utf-8"))
    return _packet(CONNECT << 4, body)


def subscribe(packet_id: int, topics: list[str], qos: int = 1) -> bytes:
    body = struct.pack("!H", packet_id) + b"\x00"
    for t in topics:
        body += _string(t) + bytes([qos])
    return _packet((SUBSCRIBE << 4) | 0x02, body)


def publish(
    topic: str, payload: bytes, packet_id: int, qos: int = 1, retain: bool = False
) -> bytes:
    """A PUBLISH packet (no properties). ``packet_id`` is ignored for QoS 0."""
    head = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0)
    t = topic.encode("utf-8")
    if qos:
        body_len = 2 + len(t) + 2 + 1 + len(payload)
        return b"".join(
            (bytes([head]), varint(body_len), struct.pack("!H", len(t)), t,
             struct.pack("!H", packet_id), b"\x00", payload)
        )  # fmt: skip
    body_len = 2 + len(t) + 1 + len(payload)
    return b"".join(
        (bytes([head]), varint(body_len), struct.pack("!H", len(t)), t, b"\x00", payload)
    )


_PUBACK_STRUCT = struct.Struct("!BBH")


def pubacks(packet_ids: list[int]) -> bytes:
    """Success PUBACKs (the short form: reason code and properties omitted) for each id."""
    pack = _PUBACK_STRUCT.pack
    return b"".join([pack(0x40, 2, pid) for pid in packet_ids])


def properties(data: bytes, pos: int) -> tuple[dict[int, int | bytes], int]:
    """Decode a property block at ``pos``: ({id: value}, position after the block).

    Integer properties become ints; strings, binary data and user properties stay bytes (user
    properties, which may repeat, keep only the last pair).
    """
    got = read_varint(data, pos)
    if got is None:
        raise ProtocolError("truncated properties")
    length, pos = got
    end = pos + length
    out: dict[int, int | bytes] = {}
    while pos < end:
        pid = data[pos]
        pos += 1
        if pid in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A):  # byte
            out[pid] = data[pos]
            pos += 1
        elif pid in (0x13, 0x21, 0x22, 0x23):  # two-byte integer
            out[pid] = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
        elif pid in (0x02, 0x11, 0x18, 0x27):  # four-byte integer
            out[pid] = int.from_bytes(data[pos : pos + 4], "big")
            pos += 4
        elif pid == 0x0B:  # subscription identifier: variable byte integer
            got = read_varint(data, pos)
            if got is None:
                raise ProtocolError("truncated properties")
            out[pid], pos = got
        elif pid == 0x26:  # user property: string pair
            n = int.from_bytes(data[pos : pos + 2], "big")
            m = int.from_bytes(data[pos + 2 + n : pos + 4 + n], "big")
            out[pid] = bytes(data[pos : pos + 4 + n + m])
            pos += 4 + n + m
        elif pid in (0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F):  # string / binary
            n = int.from_bytes(data[pos : pos + 2], "big")
            out[pid] = bytes(data[pos + 2 : pos + 2 + n])
            pos += 2 + n
        else:
            raise ProtocolError(f"unknown property identifier 0x{pid:02x}")
    if pos != end:
        raise ProtocolError("property block length does not match its content")
    return out, end


@dataclass(frozen=True, slots=True)
class Connack:
    session_present: bool
    reason: int
    props: dict[int, int | bytes]

    @property
    def receive_maximum(self) -> int:
        value = self.props.get(PROP_RECEIVE_MAXIMUM, 65_535)
        return value if isinstance(value, int) else 65_535

    @property
    def reason_text(self) -> str:
        text = CONNACK_REASONS.get(self.reason, f"reason 0x{self.reason:02x}")
        extra = self.props.get(PROP_REASON_STRING)
        return f"{text} ({extra.decode(errors='replace')})" if isinstance(extra, bytes) else text


def parse_connack(body: bytes) -> Connack:
    if len(body) < 2:
        raise ProtocolError("CONNACK too short")
    props: dict[int, int | bytes] = {}
    if len(body) > 2:
        props, _ = properties(body, 2)
    return Connack(bool(body[0] & 1), body[1], props)


def parse_suback(body: bytes) -> tuple[int, list[int]]:
    """(packet id, reason code per topic filter)."""
    if len(body) < 3:
        raise ProtocolError("SUBACK too short")
    _, pos = properties(body, 2)
    return int.from_bytes(body[:2], "big"), list(body[pos:])


def parse_puback(body: bytes) -> tuple[int, int]:
    """(packet id, reason code): the short form means success."""
    if len(body) < 2:
        raise ProtocolError("PUBACK too short")
    return int.from_bytes(body[:2], "big"), body[2] if len(body) > 2 else 0


def parse_disconnect(body: bytes) -> tuple[int, str]:
    """(reason code, reason string or '')."""
    if not body:
        return 0, ""
    reason = body[0]
    text = ""
    if len(body) > 1:
        props, _ = properties(body, 1)
        raw = props.get(PROP_REASON_STRING)
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else ""
    return reason, text


class Reader:
    """Splits what the socket gives into packets.

    ``feed(data)`` returns ``(publishes, others)``: publishes as ``(topic, payload, packet id,
    qos, retain, dup)`` tuples (packet id 0 for QoS 0), every other packet as ``(type, flags,
    body)``. What is left of an incomplete packet waits for the next ``feed``.
    """

    __slots__ = ("_rest", "_topics", "max_packet")

    def __init__(self, max_packet: int = MAX_REMAINING) -> None:
        self._rest = b""
        self._topics: dict[bytes, str] = {}
        self.max_packet = max_packet

    def reset(self) -> None:
        self._rest = b""

    def feed(
        self, data: bytes
    ) -> tuple[list[tuple[str, bytes, int, int, bool, bool]], list[tuple[int, int, bytes]]]:
        if self._rest:
            data = self._rest + data
            self._rest = b""
        pubs: list[tuple[str, bytes, int, int, bool, bool]] = []
        others: list[tuple[int, int, bytes]] = []
        topics = self._topics
        n = len(data)
        pos = 0
        while pos < n:
            start = pos
            first = data[pos]
            # remaining length, inlined for the common one- and two-byte cases
            if pos + 1 >= n:
                break
            b1 = data[pos + 1]
            if b1 < 0x80:
                length, pos = b1, pos + 2
            elif pos + 2 < n and data[pos + 2] < 0x80:
                length, pos = (b1 & 0x7F) | (data[pos + 2] << 7), pos + 3
            else:
                got = read_varint(data, pos + 1)
                if got is None:
                    pos = start
                    break
                length, pos = got
            if length > self.max_packet:
                raise ProtocolError(f"packet of {length} bytes is over the limit")
            end = pos + length
            if end > n:
                pos = start
                break
            kind = first >> 4
            if kind == PUBLISH:
                qos = (first >> 1) & 3
                tlen = (data[pos] << 8) | data[pos + 1]
                raw_topic = data[pos + 2 : pos + 2 + tlen]
                topic = topics.get(raw_topic)
                if topic is None:
                    try:
                        topic = raw_topic.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise ProtocolError("PUBLISH topic is not UTF-8") from exc
                    if len(topics) >= 100_000:
                        topics.clear()
                    topics[raw_topic] = topic
                p = pos + 2 + tlen
                if qos:
                    pid = (data[p] << 8) | data[p + 1]
                    p += 2
                else:
                    pid = 0
                plen = data[p]
                if plen < 0x80:
                    p += 1 + plen
                else:
                    got = read_varint(data, p)
                    if got is None:
                        raise ProtocolError("truncated PUBLISH properties")
                    plen, p = got
                    p += plen
                if p > end:
                    raise ProtocolError("PUBLISH header longer than the packet")
                pubs.append((topic, data[p:end], pid, qos, bool(first & 1), bool(first & 8)))
            else:
                others.append((kind, first & 0x0F, data[pos:end]))
            pos = end
        if pos < n:
            self._rest = data[pos:]
        return pubs, others
