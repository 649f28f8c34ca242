"""Parameter parsing of the REST API: times, buckets, cursors, re-bucketing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edgecloud.cloud.api.errors import BadRequest, NotFound
from edgecloud.cloud.api.params import (
    check_id,
    decode_cursor,
    encode_cursor,
    floor_to,
    format_bucket,
    parse_bucket,
    parse_time,
)
from edgecloud.cloud.api.queries import Point, rebucket

NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T10:00:00Z", NOW),
        ("2026-11-22T10:00:00.000z", NOW),
        ("2026-11-22T11:00:00+01:00", NOW),
        ("2026-11-22T10:00:00", NOW),  # no zone: UTC
        (str(NOW.timestamp()), NOW),
        ("1795341600.5", datetime.fromtimestamp(1795341600.5, UTC)),
        ("-15m", NOW - timedelta(minutes=15)),
        ("-2h", NOW - timedelta(hours=2)),
        ("-7d", NOW - timedelta(days=7)),
    ],
)
def test_times(text: str, expected: datetime) -> None:
    assert parse_time(text, "since", now=NOW) == expected
    assert parse_time(None, "since") is None and parse_time("", "since") is None


@pytest.mark.parametrize(
    "text",
    ["yesterday", "2026-02-30T00:00:00Z", "1e9", "-5y", "999999999999", "0001-01-01", "\x00"],
)
def test_bad_times_are_400(text: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_time(text, "until", now=NOW)
    assert err.value.status == 400 and "until" in err.value.detail


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("1m", 1), ("5m", 5), ("15m", 15), ("1h", 60), ("6h", 360), ("1d", 1440), ("7d", 10080)],
)
def test_buckets(text: str, minutes: int) -> None:
    step = parse_bucket(text)
    assert step == timedelta(minutes=minutes) and format_bucket(step) == text.replace("6h", "6h")


@pytest.mark.parametrize("text", ["0m", "30s", "1w", "8d", "m", "", "1.5h", "-1h"])
def test_bad_buckets(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_bucket(text)


def test_floor_is_on_the_epoch_grid() -> None:
    ts = datetime(2026, 11, 22, 10, 7, 31, 500, tzinfo=UTC)
    assert floor_to(ts, timedelta(minutes=5)) == datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
    assert floor_to(ts, timedelta(days=1)) == datetime(2026, 11, 22, tzinfo=UTC)


def test_cursors_round_trip_and_junk_is_400() -> None:
    key = {"ts": NOW.isoformat(), "seq": 42, "order": "desc"}
    assert decode_cursor(encode_cursor(key), ("ts", "seq", "order")) == key
    assert decode_cursor(None, ("seq",)) is None
    for junk in ("%%%", "bm90IGpzb24", encode_cursor({"other": 1}), encode_cursor({"seq": 1})):
        with pytest.raises(BadRequest):
            decode_cursor(junk, ("ts", "seq", "order"))


def test_ids_that_cannot_exist_are_404() -> None:
    assert check_id("press-07.a_b", "device") == "press-07.a_b"
    for bad in ("", "a b", "x" * 65, "a/b", "a\x00"):
        with pytest.raises(NotFound):
            check_id(bad, "device")


def test_rebucket_folds_minutes() -> None:
    t0 = datetime(2026, 11, 22, 10, 3, tzinfo=UTC)
    minutes = [
        Point("t", t0 + timedelta(minutes=i), 2, float(i), float(i + 1), 2.0 * i + 1, i % 2)
        for i in range(4)
    ] + [Point("v", t0, 1, 5.0, 5.0, 5.0, 1)]
    out = rebucket(minutes, timedelta(minutes=5))
    assert [(p.metric, p.bucket.minute, p.count, p.min, p.max, p.anomaly_count) for p in out] == [
        ("t", 0, 4, 0.0, 2.0, 1),
        ("t", 5, 4, 2.0, 4.0, 1),
        ("v", 0, 1, 5.0, 5.0, 1),
    ]
    assert out[0].mean == (1 + 3) / 4
