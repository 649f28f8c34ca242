"""The MQTT 5 codec of the native client, against byte layouts from the MQTT 5 spec."""

from __future__ import annotations

import random
import struct

import pytest

from edgecloud.adapters import mqttwire as wire


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_varint_matches_the_spec_table(value: int, encoded: bytes) -> None:
    assert wire.varint(value) == encoded
    assert wire.read_varint(b"\xaa" + encoded, 1) == (value, 1 + len(encoded))


def test_varint_bounds_and_truncation() -> None:
    with pytest.raises(ValueError):
        wire.varint(268_435_456)
    with pytest.raises(ValueError):
        wire.varint(-1)
    assert wire.read_varint(b"\x80\x80", 0) is None  # incomplete: wait for more bytes
    with pytest.raises(wire.ProtocolError):
        wire.read_varint(b"\xff\xff\xff\xff\x01", 0)


def test_connect_layout() -> None:
    pkt = wire.connect(
        "cid", clean_start=False, keepalive_s=30, username="u", password="p", session_expiry_s=900
    )
    assert pkt[0] == 0x10
    length, pos = wire.read_varint(pkt, 1) or (0, 0)
    assert length == len(pkt) - pos
    body = pkt[pos:]
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0x80 | 0x40  # user name, password; clean start off
    assert struct.unpack("!H", body[8:10]) == (30,)
    assert body[10] == 5 and body[11:16] == b"\x11" + struct.pack("!I", 900)
    assert body[16:] == b"\x00\x03cid\x00\x01u\x00\x01p"
    clean = wire.connect("c", clean_start=True, keepalive_s=5)
    assert clean[2 + 7] == 0x02 and clean[2 + 10] == 0  # no properties


def test_subscribe_and_pubacks_layout() -> None:
    assert wire.subscribe(7, ["a/+", "b/#"]) == (
        b"\x82\x0f\x00\x07\x00" + b"\x00\x03a/+\x01" + b"\x00\x03b/#\x01"
    )
    assert wire.pubacks([1, 0x0203, 65535]) == b"\x40\x02\x00\x01\x40\x02\x02\x03\x40\x02\xff\xff"
    assert wire.pubacks([]) == b""


def test_publish_roundtrip_through_reader() -> None:
    pkt = wire.publish("devices/d1/telemetry", b'{"x":1}', 513, qos=1)
    assert pkt[0] == 0x32
    pubs, others = wire.Reader().feed(pkt)
    assert others == []
    assert pubs == [("devices/d1/telemetry", b'{"x":1}', 513, 1, False, False)]
    q0 = wire.publish("t", b"", 0, qos=0, retain=True)
    assert wire.Reader().feed(q0)[0] == [("t", b"", 0, 0, True, False)]


def _broker_publish(
    topic: str, payload: bytes, pid: int, props: bytes = b"", dup: bool = False
) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + struct.pack("!H", pid) + wire.varint(len(props))
    body += props + payload
    return bytes([0x32 | (0x08 if dup else 0)]) + wire.varint(len(body)) + body


def test_reader_skips_publish_properties_and_keeps_dup() -> None:
    props = b"\x01\x01" + b"\x03\x00\x10application/json"  # payload format, content type
    pkt = _broker_publish("a/b", b"payload", 9, props, dup=True)
    pubs, _ = wire.Reader().feed(pkt)
    assert pubs == [("a/b", b"payload", 9, 1, False, True)]


def test_reader_reassembles_a_stream_cut_anywhere() -> None:
    rng = random.Random(7)
    expected = []
    stream = b""
    for i in range(400):
        payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 5, 200, 300, 20_000])))
        topic = f"edgecloud/n{i % 7}/events/reading"
        expected.append((topic, payload, i % 65535 + 1))
        stream += _broker_publish(topic, payload, i % 65535 + 1)
        if i % 50 == 0:
            stream += b"\xd0\x00"  # PINGRESP between publishes
    for _ in range(5):
        reader = wire.Reader()
        got, pings = [], 0
        pos = 0
        while pos < len(stream):
            step = rng.choice([1, 2, 3, 17, 1000, 65_536])
            pubs, others = reader.feed(stream[pos : pos + step])
            got.extend((t, p, pid) for t, p, pid, *_ in pubs)
            pings += sum(1 for kind, _f, _b in others if kind == wire.PINGRESP)
            pos += step
        assert got == expected
        assert pings == 8


def test_reader_refuses_oversized_and_malformed_packets() -> None:
    with pytest.raises(wire.ProtocolError):
        wire.Reader(max_packet=100).feed(b"\x30" + wire.varint(101))
    bad_topic = b"\x30\x05\x00\x03\xff\xfe\xfd"
    with pytest.raises(wire.ProtocolError):
        wire.Reader().feed(bad_topic)


def test_connack_suback_puback_disconnect_parsing() -> None:
    ack = wire.parse_connack(b"\x01\x00\x03\x21\x03\xe8")
    assert ack.session_present and ack.reason == 0 and ack.receive_maximum == 1000
    refused = wire.parse_connack(b"\x00\x86\x00")
    assert refused.reason_text == "bad user name or password"
    assert wire.parse_connack(b"\x00\x00").receive_maximum == 65_535
    assert wire.parse_suback(b"\x00\x01\x00\x01\x87") == (1, [1, 0x87])
    assert wire.parse_puback(b"\x00\x05") == (5, 0)
    assert wire.parse_puback(b"\x00\x05\x87\x00") == (5, 0x87)
    assert wire.parse_disconnect(b"") == (0, "")
    assert wire.parse_disconnect(b"\x8e\x06\x1f\x00\x03bye") == (0x8E, "bye")
    with pytest.raises(wire.ProtocolError):
        wire.properties(b"\x02\x7e\x00", 0)  # unknown property identifier
