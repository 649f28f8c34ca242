"""The unit the bridge stores and forwards: one Kafka message (topic, key, headers, value).

A record is framed in the spool as ``[u32 length][u32 crc32(body)][body]`` where ``body`` is
``[f64 appended_at][u16 topic][u16 key][u16 headers][u32 value]`` lengths followed by the bytes;
headers are ``[u16 klen][u16 vlen][k][v]...``. The framing lives in ``spool.py``; this module
only (de)serialises the body so that it can be tested on its own.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_BODY = struct.Struct("!dHHHI")
_HDR = struct.Struct("!HH")

Headers = list[tuple[str, bytes]]


@dataclass(slots=True)
class OutRecord:
    topic: str
    key: bytes
    value: bytes
    headers: Headers
    appended_at: float = 0.0


_NAMES: dict[str, bytes] = {}  # header names and topics, encoded once


def _encoded(name: str) -> bytes:
    raw = _NAMES.get(name)
    if raw is None:
        raw = name.encode()
        if len(_NAMES) < 10_000:
            _NAMES[name] = raw
    return raw


def encode_body(rec: OutRecord) -> bytes:
    topic = _encoded(rec.topic)
    pack = _HDR.pack
    parts: list[bytes] = []
    for k, v in rec.headers:
        k_b = _encoded(k)
        parts += (pack(len(k_b), len(v)), k_b, v)
    hdrs = b"".join(parts)
    head = _BODY.pack(rec.appended_at, len(topic), len(rec.key), len(hdrs), len(rec.value))
    return b"".join((head, topic, rec.key, hdrs, rec.value))


def decode_body(body: bytes | memoryview) -> OutRecord:
    view = memoryview(body)
    ts, tlen, klen, hlen, vlen = _BODY.unpack_from(view, 0)
    pos = _BODY.size
    if pos + tlen + klen + hlen + vlen != len(view):
        raise ValueError("record body lengths do not add up")
    topic = bytes(view[pos : pos + tlen]).decode()
    pos += tlen
    key = bytes(view[pos : pos + klen])
    pos += klen
    headers: Headers = []
    end = pos + hlen
    while pos < end:
        hk, hv = _HDR.unpack_from(view, pos)
        pos += _HDR.size
        name = bytes(view[pos : pos + hk]).decode()
        pos += hk
        headers.append((name, bytes(view[pos : pos + hv])))
        pos += hv
    value = bytes(view[pos : pos + vlen])
    return OutRecord(topic, key, value, headers, ts)
