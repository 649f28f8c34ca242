"""Writes one decoded batch into the cloud database in ONE transaction.

Postgres: the reading envelopes are COPYed into a temporary staging table, then a single
statement inserts them into ``readings`` with ``ON CONFLICT DO NOTHING RETURNING`` and, from
exactly the rows that were new, updates ``aggregates_1m`` and its hourly rollup ``aggregates_1h``
(both from one per-minute grouping of the new values), ``devices`` and the escalation queue
(data-modifying CTEs). A replayed or duplicated event therefore changes nothing, whatever the
order. SQLite: the same semantics with plain upserts, aggregates folded in Python.

Heartbeats, model status and dead letters are rare; they go through SQLAlchemy Core on both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from edgecloud.adapters.postgres import (
    DATA_ERRORS,
    TRANSIENT_ERRORS,
    copy_bytes,
    driver,
    needs_escape,
    stage_and_merge,
)
from edgecloud.cloud import db
from edgecloud.cloud.rollouts.status import store_model_status
from edgecloud.cloud.worker.decode import Decoded, dead_letter
from edgecloud.cloud.worker.nodes import merge_node
from edgecloud.core.errors import TransportError
from edgecloud.core.events import HeartbeatEvent, ReadingEvent
from edgecloud.core.wire import DeadLetter

log = logging.getLogger(__name__)

STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_readings "
    "(event_id uuid, node_id text, ts timestamptz, payload jsonb) ON COMMIT DELETE ROWS"
)
STAGE_COPY = "COPY stage_readings (event_id, node_id, ts, payload) FROM STDIN"
MERGE_SQL = """
WITH ins AS (
  INSERT INTO readings AS r (event_id, device_id, seq, node_id, ts, received_at, "values",
                             model, model_version, score, anomaly, escalate, inference)
  SELECT s.event_id, s.payload->>'device_id', (s.payload->'data'->>'seq')::bigint, s.node_id,
         s.ts, now(), s.payload->'data'->'values', i.inf->>'model', i.inf->>'version',
         (i.inf->>'score')::float8, coalesce((i.inf->>'anomaly')::boolean, false),
         coalesce((i.inf->>'escalate')::boolean, false), i.inf
  FROM stage_readings s
  CROSS JOIN LATERAL (SELECT NULLIF(s.payload->'data'->'inference', 'null'::jsonb) AS inf) i
  ON CONFLICT DO NOTHING
  RETURNING r.event_id, r.device_id, r.seq, r.node_id, r.ts, r."values", r.anomaly, r.escalate
), m AS (
  -- the new readings' numeric values per minute, once: both rollups are fed from these rows
  SELECT ins.device_id, kv.key AS metric, date_trunc('minute', ins.ts, 'UTC') AS bucket,
         count(*) AS n, sum(kv.value::numeric) AS s, min(kv.value::float8) AS lo,
         max(kv.value::float8) AS hi, count(*) FILTER (WHERE ins.anomaly) AS an
  FROM ins CROSS JOIN LATERAL jsonb_each(ins."values") kv
  WHERE jsonb_typeof(kv.value) = 'number'
  GROUP BY 1, 2, 3
), agg AS (
  INSERT INTO aggregates_1m AS a (device_id, metric, bucket, count, sum, min, max, anomaly_count)
  SELECT device_id, metric, bucket, n, s, lo, hi, an FROM m
  ON CONFLICT (device_id, metric, bucket) DO UPDATE SET
    count = a.count + excluded.count, sum = a.sum + excluded.sum,
    min = least(a.min, excluded.min), max = greatest(a.max, excluded.max),
    anomaly_count = a.anomaly_count + excluded.anomaly_count
  RETURNING 1
), agg_h AS (
  INSERT INTO aggregates_1h AS h (device_id, metric, bucket, count, sum, min, max, anomaly_count)
  SELECT device_id, metric, date_trunc('hour', bucket, 'UTC'), sum(n), sum(s), min(lo), max(hi),
         sum(an)
  FROM m GROUP BY 1, 2, 3
  ON CONFLICT (device_id, metric, bucket) DO UPDATE SET
    count = h.count + excluded.count, sum = h.sum + excluded.sum,
    min = least(h.min, excluded.min), max = greatest(h.max, excluded.max),
    anomaly_count = h.anomaly_count + excluded.anomaly_count
  RETURNING 1
), dev AS (
  INSERT INTO devices AS d (device_id, node_id, first_seen, last_seen, last_seq, readings)
  SELECT device_id, (array_agg(node_id ORDER BY ts DESC, seq DESC))[1], min(ts), max(ts),
         max(seq), count(*)
  FROM ins GROUP BY device_id
  ON CONFLICT (device_id) DO UPDATE SET
    node_id = CASE WHEN excluded.last_seen >= d.last_seen THEN excluded.node_id
                   ELSE d.node_id END,
    first_seen = least(d.first_seen, excluded.first_seen),
    last_seen = greatest(d.last_seen, excluded.last_seen),
    last_seq = greatest(d.last_seq, excluded.last_seq),
    readings = d.readings + excluded.readings
  RETURNING 1
), esc AS (
  INSERT INTO escalations (event_id, status, tokens, attempts, next_attempt_at, created_at,
                           updated_at)
  SELECT event_id, %(esc_status)s, 0, 0, now(), now(), now() FROM ins WHERE escalate
  ON CONFLICT DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM esc),
       (SELECT count(*) FROM agg), (SELECT count(*) FROM dev), (SELECT count(*) FROM agg_h)
"""


@dataclass(slots=True)
class WriteResult:
    readings_new: int = 0
    readings_duplicate: int = 0
    heartbeats_new: int = 0
    model_status_new: int = 0
    dead_letters: int = 0
    escalations_queued: int = 0

    def add(self, other: WriteResult) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _stage_rows(readings: list[tuple[Any, ReadingEvent]]) -> bytes:
    """COPY text of the staging rows: event_id, node_id, ts, payload (the message as it came).

    The uuid goes as 32 hex digits (Postgres reads them; cheaper than ``str``). Payloads are
    escaped one by one only when one of them holds a byte COPY treats specially, which compact
    JSON never does (a backslash, tab or line break).
    """
    if needs_escape(b"".join([msg.value for msg, _ in readings])):
        return b"".join(
            [
                b"%032x\t%s\t%s\t%s\n"
                % (
                    ev.event_id.int,
                    ev.node_id.encode(),
                    ev.ts.isoformat().encode(),
                    copy_bytes(msg.value),
                )
                for msg, ev in readings
            ]
        )
    return b"".join(
        [
            b"%032x\t%s\t%s\t%s\n"
            % (ev.event_id.int, ev.node_id.encode(), ev.ts.isoformat().encode(), msg.value)
            for msg, ev in readings
        ]
    )


def _aware(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


def _insert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT (with ``on_conflict_*``)."""
    mod = postgresql if conn.dialect.name == "postgresql" else sqlite
    return mod.insert(table)


class Store:
    """One batch -> one transaction. ``escalation_status`` is what new escalations start as."""

    def __init__(self, engine: Engine, escalation_status: str = "pending") -> None:
        self.engine = engine
        self.escalation_status = escalation_status
        self.is_postgres = engine.dialect.name == "postgresql"

    # --- public ---------------------------------------------------------------------------
    def write(self, batch: Decoded) -> WriteResult:
        """Write ``batch`` atomically; on a data error, event by event (bad ones dead-lettered)."""
        try:
            return self._write_tx(batch)
        except TRANSIENT_ERRORS as exc:  # first: OperationalError is a StatementError too
            raise TransportError(f"cloud database: {exc}") from exc
        except DATA_ERRORS as exc:
            log.warning(
                "batch rejected by the database, writing event by event",
                extra={"error": _first_line(exc), "events": len(batch)},
            )
        result = WriteResult()
        for single, msg_dl in _split(batch):
            try:
                try:
                    result.add(self._write_tx(single))
                except TRANSIENT_ERRORS:
                    raise
                except DATA_ERRORS as exc:
                    if msg_dl is None:  # a dead letter itself refused: keep it in the log
                        log.error(
                            "dead letter refused by the database",
                            extra={"error": _first_line(exc), "dead_letter": repr(single)[:4000]},
                        )
                        continue
                    msg_dl.detail = _first_line(exc)
                    result.add(self._write_tx(Decoded(dead_letters=[msg_dl])))
            except TRANSIENT_ERRORS as exc:
                raise TransportError(f"cloud database: {exc}") from exc
        return result

    # --- one transaction --------------------------------------------------------------------
    def _write_tx(self, batch: Decoded) -> WriteResult:
        res = WriteResult()
        with self.engine.begin() as conn:
            if batch.readings:
                if self.is_postgres:
                    self._readings_pg(conn, batch.readings, res)
                else:
                    self._readings_sqlite(conn, batch.readings, res)
            if batch.heartbeats:
                self._heartbeats(conn, [ev for _, ev in batch.heartbeats], res)
            if batch.model_status:
                events = [ev for _, ev in batch.model_status]
                res.model_status_new += store_model_status(conn, events)
            if batch.dead_letters:
                self._dead_letters(conn, batch.dead_letters, res)
        return res

    def _readings_pg(
        self, conn: Connection, readings: list[tuple[Any, ReadingEvent]], res: WriteResult
    ) -> None:
        with driver(conn).cursor() as cur:
            cur.execute("SET LOCAL jit = off")  # planning a 2000-row merge does not pay for JIT
            stage_and_merge(
                cur, STAGE_DDL, STAGE_COPY, _stage_rows(readings), MERGE_SQL,
                {"esc_status": self.escalation_status},
            )  # fmt: skip
            row = cur.fetchone()
        assert row is not None
        res.readings_new += int(row[0])
        res.readings_duplicate += len(readings) - int(row[0])
        res.escalations_queued += int(row[1])

    def _readings_sqlite(
        self, conn: Connection, readings: list[tuple[Any, ReadingEvent]], res: WriteResult
    ) -> None:
        t = db.table_of(db.Reading)
        new: list[ReadingEvent] = []
        for _, ev in readings:
            inf = ev.data.inference
            stmt = (
                _insert(conn, t)
                .values(
                    event_id=ev.event_id,
                    device_id=ev.device_id,
                    seq=ev.data.seq,
                    node_id=ev.node_id,
                    ts=ev.ts.astimezone(UTC),
                    received_at=db.utcnow(),
                    values=ev.data.values,
                    model=inf.model if inf else None,
                    model_version=inf.version if inf else None,
                    score=inf.score if inf else None,
                    anomaly=bool(inf and inf.anomaly),
                    escalate=bool(inf and inf.escalate),
                    inference=inf.model_dump(mode="json") if inf else None,
                )
                .on_conflict_do_nothing()
            )
            if conn.execute(stmt).rowcount == 1:
                new.append(ev)
        res.readings_new += len(new)
        res.readings_duplicate += len(readings) - len(new)
        _sqlite_aggregates(conn, new)
        _sqlite_devices(conn, new)
        escalate = [ev for ev in new if ev.data.inference and ev.data.inference.escalate]
        if escalate:
            now = db.utcnow()
            conn.execute(
                _insert(conn, db.table_of(db.Escalation)).on_conflict_do_nothing(),
                [
                    {
                        "event_id": ev.event_id,
                        "status": self.escalation_status,
                        "tokens": 0,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for ev in escalate
                ],
            )
            res.escalations_queued += len(escalate)

    def _heartbeats(self, conn: Connection, hbs: list[HeartbeatEvent], res: WriteResult) -> None:
        t = db.table_of(db.Heartbeat)
        stmt = (
            _insert(conn, t)
            .values(
                [
                    {
                        "event_id": ev.event_id,
                        "node_id": ev.node_id,
                        "role": ev.data.role,
                        "ts": ev.ts,
                        "received_at": db.utcnow(),
                        "data": ev.data.model_dump(mode="json"),
                    }
                    for ev in hbs
                ]
            )
            .on_conflict_do_nothing()
            .returning(t.c.event_id)
        )
        new_ids = set(conn.execute(stmt).scalars())
        res.heartbeats_new += len(new_ids)
        nodes = db.table_of(db.Node)
        for ev in sorted((e for e in hbs if e.event_id in new_ids), key=lambda e: e.ts):
            sel = sa.select(nodes).where(nodes.c.node_id == ev.node_id)
            if self.is_postgres:
                sel = sel.with_for_update()
            cur_row = conn.execute(sel).mappings().first()
            current = None
            if cur_row is not None:
                current = dict(cur_row)
                for k in ("first_seen", "last_heartbeat", "agent_heartbeat", "bridge_heartbeat"):
                    current[k] = _aware(current[k])
            row = merge_node(current, ev)
            if row is None:
                continue
            upsert = _insert(conn, nodes).values(**row)
            upsert = upsert.on_conflict_do_update(
                index_elements=[nodes.c.node_id],
                set_={k: upsert.excluded[k] for k in row if k != "node_id"},
            )
            conn.execute(upsert)

    def _dead_letters(self, conn: Connection, rows: list[DeadLetter], res: WriteResult) -> None:
        now = db.utcnow()
        conn.execute(
            sa.insert(db.table_of(db.DeadLetter)),
            [{**r.cloud_row(), "received_at": now} for r in rows],
        )
        res.dead_letters += len(rows)


def _split(batch: Decoded) -> Iterable[tuple[Decoded, DeadLetter | None]]:
    """One single-event batch per event, with the dead letter to keep if it is refused."""
    for m, r in batch.readings:
        yield (
            Decoded(readings=[(m, r)]),
            dead_letter(m, "db_rejected", "", node_id=r.node_id, event_id=str(r.event_id)),
        )
    for m, h in batch.heartbeats:
        yield (
            Decoded(heartbeats=[(m, h)]),
            dead_letter(m, "db_rejected", "", node_id=h.node_id, event_id=str(h.event_id)),
        )
    for m, s in batch.model_status:
        yield (
            Decoded(model_status=[(m, s)]),
            dead_letter(m, "db_rejected", "", node_id=s.node_id, event_id=str(s.event_id)),
        )
    for d in batch.dead_letters:
        yield Decoded(dead_letters=[d]), None


def _bucket(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


Fold = list[Any]  # [count, sum, min, max, anomaly_count]


def _fold(
    acc: dict[tuple[str, str, datetime], Fold], key: tuple[str, str, datetime], f: Fold
) -> None:
    a = acc.get(key)
    if a is None:
        acc[key] = list(f)
    else:
        a[0] += f[0]
        a[1] += f[1]
        a[2] = min(a[2], f[2])
        a[3] = max(a[3], f[3])
        a[4] += f[4]


def _sqlite_aggregates(conn: Connection, new: list[ReadingEvent]) -> None:
    """The new readings' numeric values per minute into ``aggregates_1m``, and the same minutes
    folded per hour into ``aggregates_1h``."""
    minutes: dict[tuple[str, str, datetime], Fold] = {}
    for ev in new:
        anomaly = 1 if ev.data.inference and ev.data.inference.anomaly else 0
        b = _bucket(ev.ts)
        for name, v in ev.data.values.items():
            if not isinstance(v, list):
                _fold(minutes, (ev.device_id, name, b), [1, v, v, v, anomaly])
    hours: dict[tuple[str, str, datetime], Fold] = {}
    for (dev, metric, b), f in minutes.items():
        _fold(hours, (dev, metric, b.replace(minute=0)), f)
    _sqlite_upsert(conn, db.table_of(db.Aggregate1m), minutes)
    _sqlite_upsert(conn, db.table_of(db.Aggregate1h), hours)


def _sqlite_upsert(
    conn: Connection, t: sa.Table, acc: dict[tuple[str, str, datetime], Fold]
) -> None:
    for (dev, metric, b), (n, s, lo, hi, an) in acc.items():
        up = _insert(conn, t).values(
            device_id=dev, metric=metric, bucket=b, count=n, sum=s, min=lo, max=hi, anomaly_count=an
        )
        up = up.on_conflict_do_update(
            index_elements=[t.c.device_id, t.c.metric, t.c.bucket],
            set_={
                "count": t.c.count + up.excluded.count,
                "sum": t.c.sum + up.excluded.sum,
                "min": sa.func.min(t.c.min, up.excluded.min),
                "max": sa.func.max(t.c.max, up.excluded.max),
                "anomaly_count": t.c.anomaly_count + up.excluded.anomaly_count,
            },
        )
        conn.execute(up)


def _sqlite_devices(conn: Connection, new: list[ReadingEvent]) -> None:
    t = db.table_of(db.Device)
    for ev in sorted(new, key=lambda e: (e.ts, e.data.seq)):
        up = _insert(conn, t).values(
            device_id=ev.device_id,
            node_id=ev.node_id,
            first_seen=ev.ts.astimezone(UTC),
            last_seen=ev.ts.astimezone(UTC),
            last_seq=ev.data.seq,
            readings=1,
        )
        up = up.on_conflict_do_update(
            index_elements=[t.c.device_id],
            set_={
                "node_id": sa.case(
                    (up.excluded.last_seen >= t.c.last_seen, up.excluded.node_id), else_=t.c.node_id
                ),
                "first_seen": sa.func.min(t.c.first_seen, up.excluded.first_seen),
                "last_seen": sa.func.max(t.c.last_seen, up.excluded.last_seen),
                "last_seq": sa.func.max(t.c.last_seq, up.excluded.last_seq),
                "readings": t.c.readings + 1,
            },
        )
        conn.execute(up)
