"""The bridge's durable local spool: an append-only segment log with length + crc framing.

Every record (one Kafka message) gets a sequence number, implicit in its position: segment
files are named ``<first seq, 20 digits>.seg`` and hold frames ``[u32 len][u32 crc32][body]``.
``append`` writes a group of records with one ``write``; ``sync`` makes them durable with one
``fdatasync`` (the bridge calls it once per batch, then acks the MQTT messages of that batch).

Records are removed only after Kafka's delivery report: ``ack(seq)`` marks one; the *watermark*
(lowest unacked seq) advances over acked records, a segment wholly below it is deleted, and when
everything is acked the active segment is rolled so the log stays small. The watermark is
checkpointed to ``watermark`` (atomic rename); losing a checkpoint only means more duplicates.

Recovery (after kill -9): each segment is scanned and checked by crc; a torn or corrupt frame
and everything after it in that segment is cut off (the torn record was never synced, so its
MQTT message was never acked and the broker redelivers it). Everything intact from the
watermark on is replayed: ``next_batch`` hands records to the producer in seq order, from
memory while the producer keeps up and from the files once it fell behind (``memory_bytes``).
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from array import array
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from edgecloud.sync.records import OutRecord, decode_body, encode_body

log = logging.getLogger("edgecloud.sync.spool")

_FRAME = struct.Struct("!II")
_MAX_RECORD = 64 * 1024 * 1024
ROLL_WHEN_EMPTY_BYTES = 4 * 1024 * 1024


@dataclass
class _Segment:
    first_seq: int
    path: Path
    size: int = 0
    count: int = 0


@dataclass(frozen=True)
class Recovery:
    segments: int
    records: int
    pending: int
    torn_bytes: int


def _seg_name(seq: int) -> str:
    return f"{seq:020d}.seg"


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        memory_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._memory_bytes = memory_bytes
        self._segments: list[_Segment] = []
        # Per-record state from the watermark to the tail (index = seq - _base).
        self._base = 0
        self._head = 0  # index of the watermark in the arrays below
        self._acked = bytearray()
        self._sizes = array("I")
        self._times = array("d")
        self._wm_seg = 0  # segment index and offset of the watermark record
        self._wm_off = 0
        self.unacked_records = 0
        self.unacked_bytes = 0
        # Produce cursor.
        self._produce_seq = 0
        self._retry: deque[tuple[int, OutRecord]] = deque()
        self._mem: deque[tuple[int, OutRecord]] = deque()
        self._mem_bytes = 0
        self._spilled = False  # records past the in-memory ones are only on disk
        self._read_seg = 0
        self._read_off = 0
        self._read_seq = 0
        self._fd = -1
        self._unsynced = False
        self._checkpointed = -1
        self.recovery = self._recover()
        self._open_segment(self.tail_seq)

    # --- positions ---------------------------------------------------------------------
    @property
    def watermark(self) -> int:
        return self._base + self._head

    @property
    def tail_seq(self) -> int:
        return self._base + len(self._acked)

    def oldest_age_s(self, now: float | None = None) -> float:
        if self.unacked_records == 0:
            return 0.0
        return max(0.0, (now or time.time()) - self._times[self._head])

    def appended_at(self, seq: int) -> float | None:
        """Wall-clock time record ``seq`` was appended (None once compacted away)."""
        i = seq - self._base
        return self._times[i] if 0 <= i < len(self._times) else None

    @property
    def disk_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    # --- recovery ----------------------------------------------------------------------
    def _recover(self) -> Recovery:
        paths = sorted(self.dir.glob("*.seg"))
        wm_file = self.dir / "watermark"
        try:
            wm = int(wm_file.read_text().strip())
        except (OSError, ValueError):
            wm = 0
        torn = records = 0
        first = int(paths[0].stem) if paths else wm
        self._base = min(wm, first) if paths else wm
        expected = self._base
        for path in paths:
            seg = _Segment(int(path.stem), path)
            while expected < seg.first_seq:  # a gap left by a cut segment: nothing to send
                self._push(1, 0, 0.0)
                expected += 1
            data = path.read_bytes()
            pos = 0
            while pos + _FRAME.size <= len(data):
                length, crc = _FRAME.unpack_from(data, pos)
                end = pos + _FRAME.size + length
                if length > _MAX_RECORD or end > len(data):
                    break
                body = memoryview(data)[pos + _FRAME.size : end]
                if zlib.crc32(body) != crc:
                    break
                ts = struct.unpack_from("!d", body, 0)[0]
                self._push(1 if expected < wm else 0, end - pos, ts)
                seg.count += 1
                expected += 1
                pos = end
            if pos < len(data):
                torn += len(data) - pos
                log.warning(
                    "spool: cut torn tail",
                    extra={"segment": path.name, "offset": pos, "bytes": len(data) - pos},
                )
                with open(path, "r+b") as fh:
                    fh.truncate(pos)
                    os.fsync(fh.fileno())
            seg.size = pos
            records += seg.count
            self._segments.append(seg)
        while expected < wm:  # watermark past the last record: all acked
            self._push(1, 0, 0.0)
            expected += 1
        self._advance_watermark()
        self._produce_seq = self.watermark
        self._spilled = self.watermark < self.tail_seq  # pending records are read from disk
        self._read_seg, self._read_off, self._read_seq = self._wm_seg, self._wm_off, self.watermark
        self._collect()
        return Recovery(len(paths), records, self.unacked_records, torn)

    def _push(self, acked: int, size: int, ts: float) -> None:
        self._acked.append(acked)
        self._sizes.append(size)
        self._times.append(ts)
        if not acked:
            self.unacked_records += 1
            self.unacked_bytes += size

    # --- appending ---------------------------------------------------------------------
    def _open_segment(self, first_seq: int) -> None:
        if self._fd >= 0:
            self.sync()  # what went into the old segment since the last sync (a dead letter)
            os.close(self._fd)
        seg = _Segment(first_seq, self.dir / _seg_name(first_seq))
        self._fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments.append(seg)
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, records: list[OutRecord]) -> int:
        """Write ``records`` (not yet durable: call ``sync``); returns the first seq."""
        first = self.tail_seq
        if not records:
            return first
        now = time.time()
        seg = self._segments[-1]
        if seg.size >= self._segment_bytes:
            self._open_segment(first)
            seg = self._segments[-1]
        frames = []
        size_total = 0
        for rec in records:
            rec.appended_at = now
            body = encode_body(rec)
            frame = _FRAME.pack(len(body), zlib.crc32(body)) + body
            frames.append(frame)
            size = len(frame)
            size_total += size
            self._push(0, size, now)
        data = b"".join(frames)
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:] if written else data)
        seg.size += len(data)
        seg.count += len(records)
        self._unsynced = True
        if not self._spilled and self._mem_bytes + size_total <= self._memory_bytes:
            for i, rec in enumerate(records):
                self._mem.append((first + i, rec))
            self._mem_bytes += size_total
        elif not self._spilled:
            self._spilled = True
            self._read_seg = len(self._segments) - 1
            self._read_off = seg.size - len(data)
            self._read_seq = first
        return first

    def sync(self) -> None:
        if self._unsynced:
            os.fdatasync(self._fd)
            self._unsynced = False

    # --- producing ---------------------------------------------------------------------
    def next_batch(self, limit: int) -> list[tuple[int, OutRecord]]:
        """Up to ``limit`` records not yet handed out, in seq order (acked ones skipped)."""
        out: list[tuple[int, OutRecord]] = []
        while self._retry and len(out) < limit:
            out.append(self._retry.popleft())
        while self._mem and len(out) < limit:
            seq, rec = self._mem.popleft()
            self._mem_bytes -= self._sizes[seq - self._base]
            self._produce_seq = seq + 1
            if not self._acked[seq - self._base]:
                out.append((seq, rec))
        if len(out) < limit and not self._mem and self._spilled:
            self._read_disk(out, limit)
        return out

    def push_back(self, items: list[tuple[int, OutRecord]]) -> None:
        """Records ``next_batch`` gave out that the producer refused (``BufferError``)."""
        self._retry.extendleft(reversed(items))

    def _read_disk(self, out: list[tuple[int, OutRecord]], limit: int) -> None:
        self.sync()  # make sure what we read back is what we wrote
        while len(out) < limit and self._read_seq < self.tail_seq:
            seg = self._segments[self._read_seg]
            if self._read_off >= seg.size:
                self._read_seg += 1
                self._read_off = 0
                if self._read_seg < len(self._segments):  # skip a gap left by a cut segment
                    nxt = self._segments[self._read_seg].first_seq
                    self._read_seq = max(self._read_seq, nxt)
                continue
            chunk_end = min(seg.size, self._read_off + 4 * 1024 * 1024)
            with open(seg.path, "rb") as fh:
                fh.seek(self._read_off)
                data = fh.read(chunk_end - self._read_off)
            pos = 0
            while len(out) < limit and pos + _FRAME.size <= len(data):
                length, _crc = _FRAME.unpack_from(data, pos)
                end = pos + _FRAME.size + length
                if end > len(data):
                    break
                seq = self._read_seq
                if not self._acked[seq - self._base]:
                    out.append((seq, decode_body(memoryview(data)[pos + _FRAME.size : end])))
                self._read_seq += 1
                pos = end
            if pos == 0 and len(data) > 0 and len(out) < limit:
                raise OSError(f"spool segment {seg.path.name}: record larger than read chunk")
            self._read_off += pos
        self._produce_seq = self._read_seq
        if self._read_seq >= self.tail_seq:
            self._spilled = False  # caught up: new appends go to memory again

    def rewind(self) -> None:
        """Hand out every unacked record again (a rebuilt producer replays the spool)."""
        self._retry.clear()
        self._mem.clear()
        self._mem_bytes = 0
        self._spilled = True
        self._read_seg, self._read_off, self._read_seq = self._wm_seg, self._wm_off, self.watermark
        self._produce_seq = self.watermark

    @property
    def unproduced(self) -> int:
        return len(self._retry) + (self.tail_seq - self._produce_seq)

    # --- acknowledging -----------------------------------------------------------------
    def ack(self, seq: int) -> None:
        """Kafka persisted record ``seq``."""
        i = seq - self._base
        if i < self._head or i >= len(self._acked) or self._acked[i]:
            return
        self._acked[i] = 1
        self.unacked_records -= 1
        self.unacked_bytes -= self._sizes[i]
        if i == self._head:
            self._advance_watermark()

    def _advance_watermark(self) -> None:
        acked, sizes, n = self._acked, self._sizes, len(self._acked)
        head, seg_i, off = self._head, self._wm_seg, self._wm_off
        segs = self._segments
        while head < n and acked[head]:
            off += sizes[head]
            head += 1
            while seg_i < len(segs) - 1 and off >= segs[seg_i].size:
                seg_i += 1
                off = 0
        self._head, self._wm_seg, self._wm_off = head, seg_i, off

    def collect(self) -> None:
        """Delete fully acked segments, roll an emptied active segment, compact the arrays."""
        self._collect()
        seg = self._segments[-1] if self._segments else None
        if (
            seg is not None
            and self.unacked_records == 0
            and not self._retry
            and self._produce_seq == self.tail_seq
            and seg.size >= ROLL_WHEN_EMPTY_BYTES
        ):
            self._open_segment(self.tail_seq)
            self._wm_seg, self._wm_off = len(self._segments) - 1, 0
            self._read_seg, self._read_off = self._wm_seg, 0
            self._collect()

    def _collect(self) -> None:
        drop = min(self._wm_seg, self._read_seg if self._spilled else self._wm_seg)
        if drop > 0:
            for seg in self._segments[:drop]:
                seg.path.unlink(missing_ok=True)
            del self._segments[:drop]
            self._wm_seg -= drop
            self._read_seg -= drop
        if self._head > 65536 and self._head * 2 > len(self._acked):
            h = self._head
            self._acked = self._acked[h:]
            self._sizes = self._sizes[h:]
            self._times = self._times[h:]
            self._base += h
            self._head = 0

    def checkpoint(self) -> None:
        """Persist the watermark (atomic rename; not fsync'd: an old one only replays more)."""
        wm = self.watermark
        if wm == self._checkpointed:
            return
        tmp = self.dir / "watermark.tmp"
        tmp.write_text(f"{wm}\n")
        tmp.replace(self.dir / "watermark")
        self._checkpointed = wm

    def close(self) -> None:
        self.sync()
        self.checkpoint()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
