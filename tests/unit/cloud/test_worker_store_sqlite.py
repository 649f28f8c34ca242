"""The Store on SQLite (plain upserts): duplicates and shuffles give one row each and the same
aggregates (per minute and per hour), computed here independently; the migration that adds
aggregates_1h backfills it from aggregates_1m."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from edgecloud.adapters.kafka_consumer import RawMessage
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.escalation.state import escalation_status, publish_disabled
from edgecloud.cloud.migrations import migrate
from edgecloud.cloud.worker.decode import decode
from edgecloud.cloud.worker.store import Store
from edgecloud.core.events import reading_event_id

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def events(n: int, spacing_s: int = 7) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        dev = f"dev-{i % 3}"
        out.append(
            {
                "schema": "edgecloud.event/v1",
                "event_id": str(reading_event_id(dev, i)),
                "type": "reading",
                "node_id": "edge-a",
                "device_id": dev,
                "ts": (T0 + timedelta(seconds=spacing_s * i)).isoformat(),
                "data": {
                    "seq": i,
                    "values": {"t": 20 + i % 5, "v": 0.25 * (i % 7), "wave": [1.0, 2.0]},
                    "inference": {
                        "model": "m",
                        "version": "1",
                        "score": 0.5,
                        "anomaly": i % 4 == 0,
                        "escalate": i % 10 == 0,
                    },
                },
            }
        )
    return out


def expected_aggregates(evs: list[dict[str, Any]]) -> dict[tuple[str, str, datetime], tuple]:
    acc: dict[tuple[str, str, datetime], list[Any]] = defaultdict(list)
    for ev in evs:
        ts = datetime.fromisoformat(ev["ts"]).replace(second=0, microsecond=0)
        for name, v in ev["data"]["values"].items():
            if not isinstance(v, list):
                acc[(ev["device_id"], name, ts)].append((v, ev["data"]["inference"]["anomaly"]))
    return {
        k: (
            len(xs),
            sum(x for x, _ in xs),
            min(x for x, _ in xs),
            max(x for x, _ in xs),
            sum(1 for _, a in xs if a),
        )
        for k, xs in acc.items()
    }


def hourly(
    minutes: dict[tuple[str, str, datetime], tuple],
) -> dict[tuple[str, str, datetime], tuple]:
    acc: dict[tuple[str, str, datetime], list[Any]] = {}
    for (dev, metric, b), (n, s, lo, hi, an) in minutes.items():
        a = acc.setdefault((dev, metric, b.replace(minute=0)), [0, 0, lo, hi, 0])
        a[0] += n
        a[1] += s
        a[2], a[3] = min(a[2], lo), max(a[3], hi)
        a[4] += an
    return {k: tuple(v) for k, v in acc.items()}


def read_aggregates(engine: sa.Engine, table: str) -> dict[tuple[str, str, datetime], tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT device_id, metric, bucket, count, sum, min, max, anomaly_count "
                f"FROM {table}"
            )
        ).all()
    return {
        (r[0], r[1], datetime.fromisoformat(str(r[2])).replace(tzinfo=UTC)): tuple(r[3:])
        for r in rows
    }


def test_duplicates_and_shuffles_give_one_row_each(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    migrate(url)
    engine = make_engine(url)
    store = Store(engine)
    evs = events(60)
    stream = [json.dumps(e).encode() for e in evs] * 2
    random.Random(7).shuffle(stream)
    msgs = [RawMessage("p.edgecloud.readings", 0, i, None, v) for i, v in enumerate(stream)]
    total_new = 0
    for k in range(0, len(msgs), 25):
        total_new += store.write(decode(msgs[k : k + 25], "p.edgecloud.dead-letters")).readings_new
    assert total_new == 60
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT event_id FROM readings")).scalars().all()
        assert sorted(str(uuid.UUID(str(i))) for i in ids) == sorted(e["event_id"] for e in evs)
        rows = conn.execute(
            sa.text(
                "SELECT device_id, metric, bucket, count, sum, min, max, anomaly_count "
                "FROM aggregates_1m"
            )
        ).all()
        devices = conn.execute(
            sa.text("SELECT device_id, readings, last_seq FROM devices ORDER BY device_id")
        ).all()
        esc = conn.execute(sa.text("SELECT count(*) FROM escalations")).scalar_one()
    got = {
        (r[0], r[1], datetime.fromisoformat(str(r[2])).replace(tzinfo=UTC)): (
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
        )
        for r in rows
    }
    assert got == expected_aggregates(evs)
    assert read_aggregates(engine, "aggregates_1h") == hourly(expected_aggregates(evs))
    assert devices == [("dev-0", 20, 57), ("dev-1", 20, 58), ("dev-2", 20, 59)]
    assert esc == 6
    publish_disabled(engine)
    assert escalation_status(engine)["state"] == "disabled"
    engine.dispose()


def test_heartbeats_and_model_status_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    migrate(url)
    engine = make_engine(url)
    store = Store(engine)

    def env(kind: str, second: int, data: dict[str, Any]) -> bytes:
        return json.dumps(
            {
                "schema": "edgecloud.event/v1",
                "event_id": str(uuid.uuid4()),
                "type": kind,
                "node_id": "edge-a",
                "ts": (T0 + timedelta(seconds=second)).isoformat(),
                "data": data,
            }
        ).encode()

    counters = {"received": 1, "processed": 1, "dead_letters": 0}
    vals = [
        env("heartbeat", 20, {"role": "agent", "labels": {"site": "new"}, "counters": counters}),
        env("heartbeat", 10, {"role": "agent", "labels": {"site": "old"}, "counters": counters}),
        env("heartbeat", 15, {"role": "bridge", "spool_depth": 4, "counters": counters}),
        env("model_status", 30, {"model": "m", "version": "2", "phase": "active"}),
        env("model_status", 5, {"model": "m", "version": "2", "phase": "downloading"}),
    ]
    msgs = [RawMessage("p.edgecloud.heartbeats", 0, i, None, v) for i, v in enumerate(vals)]
    res = store.write(decode(msgs, "dl"))
    res2 = store.write(decode(msgs, "dl"))  # the same messages again
    assert (res.heartbeats_new, res.model_status_new) == (3, 2)
    assert (res2.heartbeats_new, res2.model_status_new) == (0, 0)
    with engine.connect() as conn:
        node = conn.execute(sa.text("SELECT labels, spool_depth FROM nodes")).one()
        phase = conn.execute(sa.text("SELECT phase FROM model_status_latest")).scalar_one()
    assert (json.loads(node[0]) if isinstance(node[0], str) else node[0]) == {"site": "new"}
    assert node[1] == 4 and phase == "active"
    engine.dispose()


def test_hourly_rollup_across_hours_with_duplicates_and_replays(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    migrate(url)
    engine = make_engine(url)
    store = Store(engine)
    evs = events(150, spacing_s=97)  # about 4 hours, 3 devices
    stream = [json.dumps(e).encode() for e in evs] * 2
    random.Random(3).shuffle(stream)
    msgs = [RawMessage("p.edgecloud.readings", 0, i, None, v) for i, v in enumerate(stream)]
    for k in range(0, len(msgs), 19):
        store.write(decode(msgs[k : k + 19], "p.edgecloud.dead-letters"))
    assert store.write(decode(msgs, "p.edgecloud.dead-letters")).readings_new == 0  # a replay
    expected = expected_aggregates(evs)
    assert read_aggregates(engine, "aggregates_1m") == expected
    hours = read_aggregates(engine, "aggregates_1h")
    assert hours == hourly(expected) and len({b for _, _, b in hours}) == 5
    engine.dispose()


def test_migration_backfills_aggregates_1h_from_the_minutes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    migrate(url, "0006_registry_rollouts")  # before aggregates_1h
    engine = make_engine(url)
    minutes: dict[tuple[str, str, datetime], tuple] = {}
    rng = random.Random(1)
    for m in range(0, 200, 3):
        for dev in ("dev-a", "dev-b"):
            n = rng.randint(1, 9)
            lo, hi = rng.randint(0, 50) * 0.5, rng.randint(50, 99) * 0.5
            minutes[(dev, "t", T0 + timedelta(minutes=m))] = (n, n * 25.5, lo, hi, m % 4)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO aggregates_1m (device_id, metric, bucket, count, sum, min, max, "
                "anomaly_count) VALUES (:d, :m, :b, :n, :s, :lo, :hi, :an)"
            ),
            [
                {
                    "d": d,
                    "m": m,
                    "b": b.strftime("%Y-%m-%d %H:%M:%S.%f"),
                    "n": v[0],
                    "s": v[1],
                    "lo": v[2],
                    "hi": v[3],
                    "an": v[4],
                }
                for (d, m, b), v in minutes.items()
            ],
        )
    migrate(url)
    assert read_aggregates(engine, "aggregates_1h") == hourly(minutes)
    assert len(hourly(minutes)) == 2 * 4  # 10:00 .. 13:00
    engine.dispose()
