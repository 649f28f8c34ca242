"""Classification of one micro-batch: dead letters, duplicates, conflicts, out-of-order."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edgecloud.edge.batch import Key, classify

TS = "2026-11-22T10:00:00Z"


@dataclass
class Msg:
    topic: str
    payload: bytes
    received_at: float = 1.0


def msg(device: str, seq: int, temp: float = 1.0, ts: str = TS) -> Msg:
    body = {"device_id": device, "seq": seq, "ts": ts, "values": {"temperature": temp}}
    return Msg(f"devices/{device}/telemetry", json.dumps(body).encode())


class Lookup:
    def __init__(self, stored: Mapping[Key, tuple[datetime, dict[str, Any]]]) -> None:
        self.stored = stored
        self.calls: list[list[Key]] = []

    def __call__(self, keys: Sequence[Key]) -> Mapping[Key, tuple[datetime, dict[str, Any]]]:
        self.calls.append(list(keys))
        return {k: self.stored[k] for k in keys if k in self.stored}


def test_new_readings_need_no_lookup() -> None:
    look = Lookup({})
    plan = classify([msg("a", 1), msg("a", 2), msg("b", 1)], {"a": 0}, look, 65536)
    assert [(a.reading.device_id, a.reading.seq) for a in plan.accepted] == [
        ("a", 1), ("a", 2), ("b", 1)
    ]  # fmt: skip
    assert look.calls == []
    assert (plan.duplicates, plan.out_of_order, plan.dead_letters) == (0, 0, [])
    assert json.loads(plan.accepted[0].values_json) == {"temperature": 1.0}
    # the COPY row and the event take ts from here: the reading's own ts, written once
    assert all(a.ts_text == a.reading.ts.isoformat() for a in plan.accepted)


def test_invalid_payloads_become_dead_letters_with_reason() -> None:
    bad = [
        Msg("devices/a/telemetry", b"{nope"),
        Msg("devices/a/telemetry", b'{"device_id": "a", "seq": "x", "ts": 1, "values": {"t": 1}}'),
        Msg("devices/a/telemetry", b'{"device_id": "a", "seq": 1, "ts": 1, "values": {"t": NaN}}'),
        Msg("devices/a/telemetry", b'{"device_id": "a", "seq": 1, "ts": 1}'),
        Msg("devices/b/telemetry", b'{"device_id": "a", "seq": 1, "ts": 1, "values": {"t": 1}}'),
        Msg("devices/a/telemetry", b"x" * 300),
    ]
    plan = classify(bad, {}, Lookup({}), 256)
    assert [d.reason for d in plan.dead_letters] == [
        "bad_json", "wrong_type", "non_finite", "missing_field", "device_mismatch", "too_large",
    ]  # fmt: skip
    assert plan.accepted == []
    assert plan.dead_letters[0].payload == b"{nope"


def test_replay_in_batch_same_body_is_duplicate_different_body_is_conflict() -> None:
    plan = classify([msg("a", 5), msg("a", 5), msg("a", 5, temp=9.0)], {}, Lookup({}), 65536)
    assert len(plan.accepted) == 1
    assert plan.duplicates == 1
    assert [(d.reason, d.device_id, d.seq) for d in plan.dead_letters] == [("seq_conflict", "a", 5)]


def test_replay_of_stored_reading_is_looked_up() -> None:
    ts = datetime(2026, 11, 22, 10, tzinfo=UTC)
    look = Lookup({("a", 3): (ts, {"temperature": 1.0}), ("a", 4): (ts, {"temperature": 2.0})})
    plan = classify([msg("a", 3), msg("a", 4), msg("a", 2), msg("a", 11)], {"a": 10}, look, 65536)
    assert look.calls == [[("a", 3), ("a", 4), ("a", 2)]]
    assert plan.duplicates == 1  # seq 3, same body
    assert [d.reason for d in plan.dead_letters] == ["seq_conflict"]  # seq 4, other values
    assert [a.reading.seq for a in plan.accepted] == [2, 11]
    assert plan.out_of_order == 1  # seq 2 < 10, never stored


def test_out_of_order_within_a_batch() -> None:
    plan = classify([msg("a", 5), msg("a", 3), msg("a", 6)], {}, Lookup({}), 65536)
    assert [a.reading.seq for a in plan.accepted] == [5, 3, 6]
    assert plan.out_of_order == 1


def test_same_values_compare_as_numbers() -> None:
    ts = datetime(2026, 11, 22, 10, tzinfo=UTC)
    look = Lookup({("a", 1): (ts, {"temperature": 1})})  # jsonb may give 1 for 1.0
    plan = classify([msg("a", 1, temp=1.0)], {"a": 1}, look, 65536)
    assert plan.duplicates == 1 and plan.dead_letters == []


def test_too_large_dead_letter_keeps_a_bounded_prefix_length_and_digest() -> None:
    import hashlib

    huge = b'{"device_id": "a", "values": {"t": [' + b"1," * 1_000_000 + b"1]}}"
    plan = classify([Msg("devices/a/telemetry", huge), msg("a", 1)], {}, Lookup({}), 65536)
    [dead] = plan.dead_letters
    assert dead.reason == "too_large"
    assert dead.payload == huge[:4096]
    assert f"{len(huge)} bytes, sha256 {hashlib.sha256(huge).hexdigest()}" in dead.detail
    assert [a.reading.seq for a in plan.accepted] == [1]  # the good one is not lost


def test_ts_outside_the_window_is_a_bad_timestamp_dead_letter() -> None:
    now = datetime(2026, 11, 22, 10, tzinfo=UTC).timestamp()
    msgs = [msg("a", 1, ts="9999-12-31T23:59:59Z"), msg("a", 2, ts="0001-01-01T00:00:00Z"),
            msg("a", 3), msg("a", 4, ts="2026-11-22T12:00:00Z")]  # fmt: skip
    for m in msgs:
        m.received_at = now
    plan = classify(msgs, {}, Lookup({}), 65536, ts_window=(86400.0, 3600.0))
    assert [a.reading.seq for a in plan.accepted] == [3]
    assert [d.reason for d in plan.dead_letters] == ["bad_timestamp"] * 3
    assert all(d.payload == m.payload for d, m in zip(plan.dead_letters, msgs[:2], strict=False))
