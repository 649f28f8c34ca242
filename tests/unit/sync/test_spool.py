"""The spool on a real directory: framing, watermark, segments, torn tails, replay."""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgecloud.sync.records import OutRecord, decode_body, encode_body
from edgecloud.sync.spool import Spool


def rec(i: int, size: int = 50) -> OutRecord:
    return OutRecord(
        "t.readings",
        f"dev-{i % 7}".encode(),
        b"v%06d" % i + b"x" * size,
        [("event_id", str(i).encode()), ("schema", b"s")],
    )


def values(items: list[tuple[int, OutRecord]]) -> list[int]:
    return [int(r.value[1:7]) for _, r in items]


def test_body_round_trip() -> None:
    r = rec(3)
    r.appended_at = 12.5
    back = decode_body(encode_body(r))
    assert back == r


def test_ack_out_of_order_moves_watermark_and_depth(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    assert sp.append([rec(i) for i in range(10)]) == 0
    sp.sync()
    items = sp.next_batch(100)
    assert [s for s, _ in items] == list(range(10))
    assert sp.unacked_records == 10
    for s in (3, 1, 2):
        sp.ack(s)
    assert sp.watermark == 0 and sp.unacked_records == 7
    sp.ack(0)
    assert sp.watermark == 4
    sp.ack(0)  # duplicate report: ignored
    assert sp.unacked_records == 6
    for s in range(4, 10):
        sp.ack(s)
    assert sp.watermark == 10 and sp.unacked_records == 0 and sp.unacked_bytes == 0


def test_recovery_replays_unacked_from_checkpoint(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append([rec(i) for i in range(20)])
    sp.sync()
    sp.next_batch(100)
    for s in range(0, 8):
        sp.ack(s)
    sp.ack(12)  # acked above the watermark: replayed again (a counted duplicate)
    sp.checkpoint()
    sp.close()
    again = Spool(tmp_path)
    assert again.recovery.pending == 12
    assert again.watermark == 8
    assert values(again.next_batch(100)) == list(range(8, 20))
    assert again.tail_seq == 20
    assert again.append([rec(20)]) == 20


def test_torn_tail_is_cut_and_the_rest_kept(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append([rec(i) for i in range(5)])
    sp.sync()
    seg = sorted(tmp_path.glob("*.seg"))[-1]
    size = seg.stat().st_size
    # A half-written frame (kill -9 mid-write) and a frame with a bad crc.
    with open(seg, "ab") as fh:
        fh.write(b"\x00\x00\x01\x00\xde\xad")
    sp2 = Spool(tmp_path)
    assert sp2.recovery.torn_bytes == 6
    assert seg.stat().st_size == size
    assert values(sp2.next_batch(100)) == [0, 1, 2, 3, 4]
    sp2.close()
    data = bytearray(seg.read_bytes())
    data[-3] ^= 0xFF  # corrupt the last record's value: its crc fails
    seg.write_bytes(bytes(data))
    sp3 = Spool(tmp_path)
    assert values(sp3.next_batch(100)) == [0, 1, 2, 3]
    assert sp3.unacked_records == 4  # seq 4 is a gap now (an empty segment follows)


def test_segments_roll_and_are_deleted_past_the_watermark(tmp_path: Path) -> None:
    sp = Spool(tmp_path, segment_bytes=2000)
    for i in range(0, 100, 10):
        sp.append([rec(j) for j in range(i, i + 10)])
    sp.sync()
    assert len(list(tmp_path.glob("*.seg"))) >= 5
    for s, _ in sp.next_batch(1000):
        sp.ack(s)
    sp.collect()
    segs = sorted(tmp_path.glob("*.seg"))
    assert len(segs) == 1 and sp.unacked_records == 0
    sp.checkpoint()
    sp.close()
    again = Spool(tmp_path)
    assert again.recovery.pending == 0 and again.tail_seq == 100
    assert again.next_batch(10) == []


def test_spills_to_disk_and_keeps_order(tmp_path: Path) -> None:
    sp = Spool(tmp_path, memory_bytes=1500, segment_bytes=3000)
    for i in range(0, 200, 20):
        sp.append([rec(j) for j in range(i, i + 20)])
    got: list[int] = []
    while True:
        batch = sp.next_batch(7)
        if not batch:
            break
        got.extend(values(batch))
    assert got == list(range(200))
    sp.append([rec(200)])  # caught up: back to memory
    assert values(sp.next_batch(10)) == [200]


def test_push_back_and_rewind(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append([rec(i) for i in range(10)])
    batch = sp.next_batch(4)
    sp.push_back(batch[2:])
    assert values(sp.next_batch(3)) == [2, 3, 4]
    for s in (0, 1, 3):
        sp.ack(s)
    sp.rewind()
    assert values(sp.next_batch(100)) == [2, 4, 5, 6, 7, 8, 9]


def test_append_is_durable_without_close(tmp_path: Path) -> None:
    """What ``sync`` returned for survives a process that never closed the spool."""
    sp = Spool(tmp_path)
    sp.append([rec(i) for i in range(3)])
    sp.sync()
    os.close(sp._fd)  # simulate the process vanishing: no close(), no checkpoint
    again = Spool(tmp_path)
    assert values(again.next_batch(10)) == [0, 1, 2]


def test_appended_at_is_the_append_time_until_compacted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    before = time.time()
    first = spool.append([OutRecord("t", b"k", b"v", [])])
    spool.sync()
    after = time.time()
    at = spool.appended_at(first)
    assert at is not None and before <= at <= after
    assert spool.appended_at(first + 1) is None  # not appended yet
    assert spool.appended_at(first - 1) is None
    spool.close()
