"""The worker against the real Kafka and Postgres: duplicates, shuffles and replays give one row
per event and the aggregates (per minute and their hourly rollup) computed here independently;
invalid events become dead letters."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import Producer
from rollup_check import assert_rollups_consistent

from edgecloud.cloud.db import Aggregate1h, Aggregate1m, table_of
from edgecloud.cloud.settings import DEFAULT_GROUP_ID, CloudSettings
from edgecloud.cloud.worker.metrics import WorkerMetrics
from edgecloud.cloud.worker.service import Worker, build_worker
from edgecloud.core.kafka import KafkaConnection
from edgecloud.core.topics import kafka_dead_letter_topic, kafka_topic
from edgecloud.dev.stack import Infra
from helpers.readings import reading_event

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def scored_reading(dev: str, seq: int) -> dict[str, Any]:
    ts = (T0 + timedelta(seconds=3 * seq, milliseconds=seq % 1000)).isoformat()
    values = {"temperature": 20 + seq % 9, "vibration": 0.125 * (seq % 13), "audio": [0.0, 0.5]}
    ev = reading_event(dev, seq, "edge-a" if seq % 2 else "edge-b", ts, **values)
    ev["data"]["inference"] = {"model": "iso", "version": "3", "score": 0.9,
                               "anomaly": seq % 5 == 0, "escalate": seq % 50 == 0}  # fmt: skip
    return ev


def heartbeat(node: str, role: str, second: int) -> dict[str, Any]:
    return {
        "schema": "edgecloud.event/v1",
        "event_id": str(uuid.uuid4()),
        "type": "heartbeat",
        "node_id": node,
        "ts": (T0 + timedelta(seconds=second)).isoformat(),
        "data": {
            "role": role,
            "labels": {"site": f"s{second}"},
            "spool_depth": second,
            "counters": {"received": second, "processed": second, "dead_letters": 0},
        },
    }


def model_status(node: str, phase: str, second: int) -> dict[str, Any]:
    return {
        "schema": "edgecloud.event/v1",
        "event_id": str(uuid.uuid4()),
        "type": "model_status",
        "node_id": node,
        "ts": (T0 + timedelta(seconds=second)).isoformat(),
        "data": {"model": "iso", "version": "3", "phase": phase, "rollout_id": "r1"},
    }


def expected_aggregates(evs: list[dict[str, Any]]) -> dict[tuple[str, str, datetime], tuple]:
    acc: dict[tuple[str, str, datetime], list[Any]] = defaultdict(list)
    for ev in evs:
        bucket = datetime.fromisoformat(ev["ts"]).replace(second=0, microsecond=0)
        for name, v in ev["data"]["values"].items():
            if not isinstance(v, list):
                acc[(ev["device_id"], name, bucket)].append((v, ev["data"]["inference"]["anomaly"]))
    return {
        k: (
            len(xs),
            float(sum(x for x, _ in xs)),
            float(min(x for x, _ in xs)),
            float(max(x for x, _ in xs)),
            sum(1 for _, a in xs if a),
        )
        for k, xs in acc.items()
    }


def expected_hourly(
    minutes: dict[tuple[str, str, datetime], tuple],
) -> dict[tuple[str, str, datetime], tuple]:
    """The minutes of ``expected_aggregates`` folded per hour."""
    acc: dict[tuple[str, str, datetime], list[Any]] = {}
    for (dev, metric, b), (n, s, lo, hi, an) in minutes.items():
        key = (dev, metric, b.replace(minute=0))
        a = acc.setdefault(key, [0, 0.0, lo, hi, 0])
        a[0] += n
        a[1] += s
        a[2], a[3] = min(a[2], lo), max(a[3], hi)
        a[4] += an
    return {k: tuple(v) for k, v in acc.items()}


def produce(kafka: KafkaConnection, items: list[tuple[str, str | None, bytes]]) -> None:
    p = Producer(kafka.client_config(**{"enable.idempotence": True, "linger.ms": 5}))
    failed: list[Any] = []
    for topic, key, value in items:
        p.produce(
            topic,
            value=value,
            key=key,
            on_delivery=lambda err, _m: failed.append(err) if err else None,
        )
        p.poll(0)
    assert p.flush(30) == 0 and not failed


def drain(worker: Worker, expected: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while worker.totals.messages < expected:
        assert time.monotonic() < deadline, f"{worker.totals.messages} of {expected} consumed"
        worker.run_once()


def settings(stack: Infra, pg_url: str, prefix: str, group: str) -> CloudSettings:
    return CloudSettings(
        database_url=pg_url,
        **stack.kafka_client("worker").settings(),
        kafka_topic_prefix=prefix,
        kafka_group_id=f"{DEFAULT_GROUP_ID}-{prefix}{group}",  # the worker's groups (ACL)
        worker_batch_size=97,
        worker_poll_timeout_s=0.2,
    )


def snapshot(engine: sa.Engine) -> dict[str, Any]:
    agg = table_of(Aggregate1m)
    agg_h = table_of(Aggregate1h)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(agg)).all()
        hours = conn.execute(sa.select(agg_h)).all()
        return {
            "readings": sorted(
                str(x) for x in conn.execute(sa.text("SELECT event_id FROM readings")).scalars()
            ),
            "aggregates": {
                (r.device_id, r.metric, r.bucket): (r.count, r.sum, r.min, r.max, r.anomaly_count)
                for r in rows
            },
            "aggregates_1h": {
                (r.device_id, r.metric, r.bucket): (r.count, r.sum, r.min, r.max, r.anomaly_count)
                for r in hours
            },
            "devices": conn.execute(
                sa.text(
                    "SELECT device_id, node_id, readings, last_seq, first_seen, last_seen "
                    "FROM devices ORDER BY device_id"
                )
            ).all(),
            "escalations": conn.execute(
                sa.text("SELECT count(*) FROM escalations WHERE status = 'disabled'")
            ).scalar_one(),
        }


def test_duplicates_shuffles_and_replays(
    stack: Infra, pg_url: str, kafka_prefix: str, engine: sa.Engine
) -> None:
    evs = [scored_reading(f"press-{d}", s) for d in range(4) for s in range(150)]
    rtopic = kafka_topic("reading", kafka_prefix)
    hb_topic = kafka_topic("heartbeat", kafka_prefix)
    ms_topic = kafka_topic("model_status", kafka_prefix)
    dl_topic = kafka_dead_letter_topic(kafka_prefix)
    hbs = [
        heartbeat("edge-a", "agent", 30),
        heartbeat("edge-a", "bridge", 40),
        heartbeat("edge-a", "agent", 10),
    ]
    mss = [model_status("edge-a", "active", 20), model_status("edge-a", "loaded", 10)]
    items = [(rtopic, e["device_id"], json.dumps(e).encode()) for e in evs] * 2
    items += [(hb_topic, "edge-a", json.dumps(h).encode()) for h in hbs] * 2
    items += [(ms_topic, "edge-a", json.dumps(m).encode()) for m in mss] * 2
    bad = dict(evs[0], data={"values": {"t": 1}})  # no seq
    items += [
        (rtopic, "x", b"{not json"),
        (rtopic, "x", json.dumps(bad).encode()),
        (dl_topic, "edge-a", json.dumps({"reason": "too_large", "node_id": "edge-a"}).encode()),
    ]
    random.Random(5).shuffle(items)

    w = build_worker(settings(stack, pg_url, kafka_prefix, "g1"), engine, WorkerMetrics())
    produce(stack.kafka_client("bridge"), items)
    try:
        drain(w, len(items))
    finally:
        w.consumer.close()
    first = snapshot(engine)
    assert first["readings"] == sorted(e["event_id"] for e in evs)
    assert w.totals.written.readings_new == 600 and w.totals.written.readings_duplicate == 600
    assert first["aggregates"] == expected_aggregates(evs)
    assert first["aggregates_1h"] == expected_hourly(expected_aggregates(evs))
    assert_rollups_consistent(engine)
    assert [(d[0], d[2], d[3]) for d in first["devices"]] == [
        (f"press-{d}", 150, 149) for d in range(4)
    ]
    assert {d[1] for d in first["devices"]} == {"edge-a"}  # seq 149 is odd -> edge-a, newest
    assert first["escalations"] == 4 * 3  # seq 0, 50, 100 per device; no key: 'disabled'

    with engine.connect() as conn:
        dls = (
            conn.execute(sa.text("SELECT reason FROM dead_letters ORDER BY reason")).scalars().all()
        )
        node = conn.execute(
            sa.text("SELECT labels, spool_depth, counters FROM nodes WHERE node_id = 'edge-a'")
        ).one()
        latest = conn.execute(
            sa.text("SELECT phase FROM model_status_latest WHERE node_id = 'edge-a'")
        ).scalar_one()
        n_hb = conn.execute(sa.text("SELECT count(*) FROM heartbeats")).scalar_one()
        n_ms = conn.execute(sa.text("SELECT count(*) FROM model_status")).scalar_one()
    assert dls == ["bad_json", "missing_field", "too_large"]
    assert node == ({"site": "s30"}, 40, {"received": 30, "processed": 30, "dead_letters": 0})
    assert latest == "active" and n_hb == 3 and n_ms == 2

    # A replay of the whole log by another consumer group changes nothing.
    again = build_worker(settings(stack, pg_url, kafka_prefix, "g2"), engine, WorkerMetrics())
    try:
        drain(again, len(items))
    finally:
        again.consumer.close()
    assert again.totals.written.readings_new == 0
    second = snapshot(engine)
    assert second == first
    assert_rollups_consistent(engine)


def test_hourly_rollup_under_duplicates_replays_and_disorder(engine: sa.Engine) -> None:
    """Readings over 5 hours (hour edges inside batches), each sent twice, shuffled, in small
    batches, then the whole stream replayed: aggregates_1h equals aggregates_1m folded per hour
    and the readings folded per hour, exactly (decimal values, numeric sums)."""
    from edgecloud.adapters.kafka_consumer import RawMessage
    from edgecloud.cloud.worker.decode import decode
    from edgecloud.cloud.worker.store import Store

    evs = []
    for d in range(3):
        for seq in range(300):
            ev = scored_reading(f"dev-h{d}", seq)
            ev["ts"] = (T0 + timedelta(seconds=61 * seq + 17 * d, microseconds=seq)).isoformat()
            ev["data"]["values"]["ratio"] = round(0.001 * seq + 0.1, 3)  # not binary-exact
            evs.append(ev)
    stream = [json.dumps(e).encode() for e in evs] * 2
    random.Random(11).shuffle(stream)
    msgs = [RawMessage("p.edgecloud.readings", 0, i, None, v) for i, v in enumerate(stream)]
    store = Store(engine)
    new = sum(
        store.write(decode(msgs[k : k + 37], "p.edgecloud.dead-letters")).readings_new
        for k in range(0, len(msgs), 37)
    )
    assert new == len(evs)
    first = assert_rollups_consistent(engine)
    assert len({b for _, _, b in first["1h"]}) == 6  # 10:00 .. 15:00
    before = snapshot(engine)
    expected = expected_hourly(expected_aggregates(evs))
    assert before["aggregates_1h"].keys() == expected.keys()
    for key, (n, total, lo, hi, anomalies) in expected.items():
        got = before["aggregates_1h"][key]
        assert (got[0], got[2], got[3], got[4]) == (n, lo, hi, anomalies), key
        assert got[1] == pytest.approx(total, rel=1e-12), key
    replay = store.write(decode(msgs[::-1], "p.edgecloud.dead-letters"))  # all again, reversed
    assert replay.readings_new == 0
    assert snapshot(engine) == before


@pytest.mark.parametrize("batch_size", [1, 500])
def test_pipelined_run_commits_offsets_only_after_the_db(
    stack: Infra, pg_url: str, kafka_prefix: str, batch_size: int, engine: sa.Engine
) -> None:
    evs = [scored_reading("dev-p", s) for s in range(300)]
    s = settings(stack, pg_url, kafka_prefix, "gp")
    s.worker_batch_size = batch_size
    w = build_worker(s, engine, WorkerMetrics())
    produce(
        stack.kafka_client("bridge"),
        [(kafka_topic("reading", kafka_prefix), "dev-p", json.dumps(e).encode()) for e in evs],
    )
    try:
        w.run(max_messages=300)
    finally:
        w.consumer.close()
    # A new member of the same group starts after the committed offsets: nothing left.
    w2 = build_worker(s, engine, WorkerMetrics())
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            w2.run_once()
    finally:
        w2.consumer.close()
    assert w2.totals.messages == 0
    assert snapshot(engine)["readings"] == sorted(e["event_id"] for e in evs)


def test_a_value_postgres_refuses_becomes_a_dead_letter_not_a_stuck_batch(
    engine: sa.Engine,
) -> None:
    from edgecloud.adapters.kafka_consumer import RawMessage
    from edgecloud.cloud.worker.decode import decode
    from edgecloud.cloud.worker.store import Store

    good = [scored_reading("dev-z", s) for s in range(3)]
    bad = scored_reading("dev-z", 3)
    bad["data"]["inference"]["label"] = "nul\u0000byte"  # valid JSON, refused by jsonb
    msgs = [
        RawMessage("p.edgecloud.readings", 0, i, None, json.dumps(e).encode())
        for i, e in enumerate([good[0], bad, good[1], good[2]])
    ]
    res = Store(engine).write(decode(msgs, "p.edgecloud.dead-letters"))
    assert (res.readings_new, res.dead_letters) == (3, 1)
    with engine.connect() as conn:
        seqs = conn.execute(sa.text("SELECT seq FROM readings ORDER BY seq")).scalars().all()
        dl = conn.execute(sa.text('SELECT reason, event_id, "offset" FROM dead_letters')).one()
        agg = conn.execute(
            sa.text("SELECT sum(count) FROM aggregates_1m WHERE metric = 'temperature'")
        ).scalar_one()
    assert seqs == [0, 1, 2]
    assert dl == ("db_rejected", bad["event_id"], 1)
    assert agg == 3


def test_dead_letters_with_nul_and_lone_surrogates_are_stored(engine: sa.Engine) -> None:
    from edgecloud.adapters.kafka_consumer import RawMessage
    from edgecloud.cloud.worker.decode import decode
    from edgecloud.cloud.worker.store import Store

    raw = b'{"reason": "odd\\u0000", "detail": "a\\u0000b\\ud800", "node_id": "n\\udfff"}'
    dl_topic = "p.edgecloud.dead-letters"
    res = Store(engine).write(decode([RawMessage(dl_topic, 2, 9, None, raw)], dl_topic))
    assert res.dead_letters == 1
    with engine.connect() as conn:
        row = conn.execute(
            sa.text('SELECT reason, detail, node_id, "offset" FROM dead_letters')
        ).one()
    assert row == ("odd\ufffd", "a\ufffdb?", "n?", 9)


def test_payloads_with_bytes_copy_treats_specially_are_stored_as_they_came(
    engine: sa.Engine,
) -> None:
    """Compact JSON skips COPY escaping; a batch with tabs, line breaks or backslashes in a
    payload (pretty-printed JSON, escapes in strings) is escaped and stored the same."""
    from edgecloud.adapters.kafka_consumer import RawMessage
    from edgecloud.cloud.worker.decode import decode
    from edgecloud.cloud.worker.store import Store

    plain = [scored_reading("dev-e", s) for s in range(3)]
    odd = [scored_reading("dev-e", s) for s in range(3, 6)]
    odd[0]["data"]["inference"]["label"] = 'tab\there "quoted" back\\slash \u00e9'
    payloads = [json.dumps(e).encode() for e in plain]
    payloads += [
        json.dumps(odd[0]).encode(),
        json.dumps(odd[1], indent="\t").encode(),
        json.dumps(odd[2], indent=2).replace("\n", "\r\n").encode(),
    ]
    topic = "p.edgecloud.readings"
    compact = [RawMessage(topic, 0, i, None, p) for i, p in enumerate(payloads[:3])]
    special = [RawMessage(topic, 0, 3 + i, None, p) for i, p in enumerate(payloads[3:])]
    store = Store(engine)
    assert store.write(decode(compact, "p.edgecloud.dead-letters")).readings_new == 3
    assert store.write(decode(special, "p.edgecloud.dead-letters")).readings_new == 3
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT event_id::text, node_id, ts, inference->>'label', \"values\" "
                "FROM readings WHERE device_id = 'dev-e' ORDER BY seq"
            )
        ).all()
    events = plain + odd
    assert [r[0] for r in rows] == [e["event_id"] for e in events]
    assert [r[1] for r in rows] == [e["node_id"] for e in events]
    assert [r[2] for r in rows] == [datetime.fromisoformat(e["ts"]) for e in events]
    assert rows[3][3] == 'tab\there "quoted" back\\slash \u00e9'
    assert [r[4] for r in rows] == [e["data"]["values"] for e in events]
