"""Bulk writes of the edge agent: one micro-batch, one transaction.

The transaction holds the batch's outbox row, its new readings (with inference results), the
device high-water marks and the dead letters. Postgres: readings go in with ``COPY`` straight
into ``readings`` (the batch was already deduplicated against the devices' last seq, so a
conflict is not expected); should one happen anyway (a second agent on the same database), the
transaction is retried through a temporary staging table with ``INSERT ... ON CONFLICT DO
NOTHING``: idempotent on (device_id, seq) either way. SQLite: ``INSERT OR IGNORE``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from edgecloud.adapters.postgres import (
    CONFLICT_ERRORS,
    NULL,
    TRANSIENT_ERRORS,
    copy_field,
    copy_in,
    driver,
    stage_and_merge,
)
from edgecloud.core.errors import TransportError
from edgecloud.core.wire import DeadLetter
from edgecloud.edge.batch import Accepted, Key, Plan
from edgecloud.edge.db import (
    DeadLetterRow,
    DeviceRow,
    OutboxRow,
    ReadingRow,
    TensorBlobRow,
    make_engine,
)

log = logging.getLogger(__name__)

READINGS = ReadingRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
DEVICES = DeviceRow.__table__  # type: ignore[attr-defined]
DEAD = DeadLetterRow.__table__  # type: ignore[attr-defined]
BLOBS = TensorBlobRow.__table__  # type: ignore[attr-defined]

COLUMNS = (
    "device_id",
    "seq",
    "ts",
    "received_at",
    "values",
    "inference",
    "anomaly",
    "score",
    "batch_id",
    "tensors",
)
COPY_SQL = "COPY readings ({}) FROM STDIN".format(", ".join(f'"{c}"' for c in COLUMNS))
STAGE_DDL = "CREATE TEMP TABLE IF NOT EXISTS stage_readings (LIKE readings) ON COMMIT DELETE ROWS"
STAGE_COPY = COPY_SQL.replace("COPY readings", "COPY stage_readings")
STAGE_MERGE = "INSERT INTO readings SELECT * FROM stage_readings ON CONFLICT DO NOTHING"
OUTBOX_AND_DEVICES_PG = """
WITH o AS (INSERT INTO outbox (batch_id, created_at, readings) VALUES (%s, now(), %s))
INSERT INTO devices AS d (device_id, last_seq, last_seen, readings)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[], %s::bigint[])
ON CONFLICT (device_id) DO UPDATE SET last_seq = greatest(d.last_seq, excluded.last_seq),
  last_seen = greatest(d.last_seen, excluded.last_seen), readings = d.readings + excluded.readings
"""


def ts_of(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class Written:
    batch_id: int | None
    inserted: int


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch rendered for Postgres before its transaction (``Store.prepare``): the agent
    does it in its batch thread while the writer thread waits on the previous batch's COPY."""

    batch_id: int
    copy: str  # the rows in COPY's text format
    marks: tuple[int, int, str, str, str, str]  # OUTBOX_AND_DEVICES_PG's parameters


@dataclass(frozen=True)
class StoredReading:
    device_id: str
    seq: int
    ts: datetime
    values_json: str
    inference_json: str | None


def copy_text(accepted: Sequence[Accepted], batch_id: int, stamps: dict[float, str]) -> str:
    """The batch's rows (``COLUMNS``) in COPY's text format: one string, one write.

    ``copy.write_row`` adapts each value of each row in Python (about 10 us a row here); these
    values are few and simple. ``device_id`` matches ID_PATTERN (nothing to escape); the
    ``values`` and ``inference`` JSON are escaped; NULL is ``\\N``. ``received_at`` is written
    once per distinct value (messages of one socket read share it) into ``stamps``.
    """
    lines = []
    for a, score in zip(accepted, _score_texts(accepted), strict=True):
        r, inf = a.reading, a.inference
        inf_json = NULL if a.inference_json is None else copy_field(a.inference_json)
        if inf is None:
            tail = f"{inf_json}\t{NULL}\t{NULL}"
        else:
            tail = f"{inf_json}\t{'t' if inf.anomaly else 'f'}\t{score}"
        received = stamps.get(a.received_at)
        if received is None:
            received = stamps[a.received_at] = ts_of(a.received_at).isoformat()
        lines.append(
            f"{r.device_id}\t{r.seq}\t{a.ts_text or r.ts.isoformat()}\t{received}\t"
            f"{copy_field(a.values_json)}\t{tail}\t{batch_id}\t"
            f"{NULL if a.tensors_json is None else copy_field(a.tensors_json)}\n"
        )
    return "".join(lines)


def _score_texts(accepted: Sequence[Accepted]) -> list[str]:
    """Each reading's score as COPY text (``\\N`` for none): one orjson call for the batch
    (shortest round-trip digits, as repr; ~1 us a row less than repr per row). A score that is
    not finite or not a float (never made by the backends) is written by repr."""
    scores = [
        None if a.inference is None or a.inference.score is None else float(a.inference.score)
        for a in accepted
    ]
    if not all(s is None or math.isfinite(s) for s in scores):
        return [NULL if s is None else repr(s) for s in scores]
    text = orjson.dumps(scores).decode()[1:-1]
    return [NULL if t == "null" else t for t in text.split(",")] if scores else []


def _array_literal(items: Sequence[object], quote: bool) -> str:
    """A Postgres array literal (``{"a","b"}`` / ``{1,2}``); quoted items hold no ``"`` or
    ``\\`` (device ids match ID_PATTERN, timestamps are ISO text). One text parameter instead
    of a list psycopg adapts item by item."""
    if quote:
        return "{" + ",".join(f'"{i}"' for i in items) + "}"
    return "{" + ",".join(map(str, items)) + "}"


def row_tuple(a: Accepted, batch_id: int) -> tuple[Any, ...]:
    inf = a.inference
    return (
        a.reading.device_id,
        a.reading.seq,
        a.reading.ts,
        ts_of(a.received_at),
        a.values_json,
        a.inference_json,
        inf.anomaly if inf else None,
        inf.score if inf else None,
        batch_id,
        a.tensors_json,
    )


class Store:
    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._last_batch = 0

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql if self.is_postgres else sqlite).insert(table)

    # --- reads ---------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa_exc.SQLAlchemyError:
            return False

    def last_seqs(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(DEVICES.c.device_id, DEVICES.c.last_seq))
            return {d: s for d, s in rows}

    def lookup(self, keys: Sequence[Key]) -> dict[Key, tuple[datetime, dict[str, Any]]]:
        """Stored ts and values of those keys that exist."""
        found: dict[Key, tuple[datetime, dict[str, Any]]] = {}
        key_col = sa.tuple_(READINGS.c.device_id, READINGS.c.seq)
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                q = sa.select(
                    READINGS.c.device_id, READINGS.c.seq, READINGS.c.ts, READINGS.c["values"]
                ).where(key_col.in_(part))
                for dev, seq, ts, values in conn.execute(q):
                    found[(dev, seq)] = (ts if ts.tzinfo else ts.replace(tzinfo=UTC), values)
        return found

    def tensor_blobs(self, device_id: str, seq: int) -> dict[str, tuple[str, list[int], bytes]]:
        """name -> (dtype, shape, raw little-endian bytes) of one reading's stored tensors."""
        q = sa.select(BLOBS.c.name, BLOBS.c.dtype, BLOBS.c.shape, BLOBS.c.data).where(
            BLOBS.c.device_id == device_id, BLOBS.c.seq == seq
        )
        with self.engine.connect() as conn:
            return {n: (d, list(s), bytes(b)) for n, d, s, b in conn.execute(q)}

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(READINGS)).scalar_one()
            d = conn.execute(sa.select(sa.func.count()).select_from(DEAD)).scalar_one()
        return {"readings": int(n), "dead_letters": int(d)}

    # --- the batch transaction -------------------------------------------------------------
    def prepare(self, plan: Plan) -> Prepared | None:
        """The batch id, COPY text and device marks of ``plan`` (Postgres; None otherwise or
        for no readings). No database work: it may run outside the writer."""
        accepted = plan.accepted
        if not (accepted and self.is_postgres):
            return None
        batch_id = self.next_batch_id()
        stamps: dict[float, str] = {}
        text = copy_text(accepted, batch_id, stamps)
        agg = _device_marks(accepted)
        marks = agg.values()
        params = (
            batch_id,
            len(accepted),
            _array_literal(list(agg), quote=True),
            _array_literal([m[0] for m in marks], quote=False),
            _array_literal([stamps[m[1]] for m in marks], quote=True),
            _array_literal([m[2] for m in marks], quote=False),
        )
        return Prepared(batch_id, text, params)

    def write(self, plan: Plan, prepared: Prepared | None = None) -> Written:
        """One transaction for ``plan``; ``prepared`` is ``prepare(plan)`` made earlier."""
        prepared = prepared or self.prepare(plan)
        try:
            try:
                return self._write_tx(plan, prepared, staged=False)
            except CONFLICT_ERRORS as exc:
                log.warning(
                    "unexpected (device_id, seq) conflict, merging through staging",
                    extra={"error": str(exc).splitlines()[0]},
                )
                return self._write_tx(plan, prepared, staged=True)
        except TRANSIENT_ERRORS as exc:
            raise TransportError(f"edge database: {exc}") from exc

    def next_batch_id(self) -> int:
        """Batch ids are made here, not by a sequence: one round trip less per batch.

        Microseconds since the epoch, strictly increasing: unique for one agent, and two
        agents on one database (a misconfiguration) would only collide within a microsecond.
        """
        self._last_batch = max(self._last_batch + 1, time.time_ns() // 1000)
        return self._last_batch

    def _write_tx(self, plan: Plan, prepared: Prepared | None, *, staged: bool) -> Written:
        batch_id: int | None = None
        inserted = 0
        with self.engine.begin() as conn:
            if plan.accepted:
                if prepared is not None:
                    batch_id = prepared.batch_id
                    inserted = self._write_pg(conn, prepared, staged)
                else:
                    batch_id = self.next_batch_id()
                    rows = [row_tuple(a, batch_id) for a in plan.accepted]
                    conn.execute(
                        OUTBOX.insert().values(
                            batch_id=batch_id, created_at=sa.func.now(), readings=len(rows)
                        )
                    )
                    inserted = self._insert_sqlite(conn, rows)
                    self._devices_sqlite(conn, plan.accepted)
                blobs = [b for a in plan.accepted if a.blobs for b in a.blobs]
                if blobs:  # after their readings (foreign key); a stored one stays as it was
                    conn.execute(self._insert(BLOBS).on_conflict_do_nothing(), blobs)
            if plan.dead_letters:
                conn.execute(DEAD.insert(), [_dead_row(d) for d in plan.dead_letters])
        return Written(batch_id, inserted)

    def _write_pg(self, conn: Connection, prepared: Prepared, staged: bool) -> int:
        """COPY the rows, then outbox row + device marks in one statement."""
        with driver(conn).cursor() as cur:
            if staged:
                stage_and_merge(cur, STAGE_DDL, STAGE_COPY, prepared.copy, STAGE_MERGE)
                inserted = cur.rowcount
            else:
                copy_in(cur, COPY_SQL, prepared.copy)
                inserted = prepared.marks[1]
            cur.execute(OUTBOX_AND_DEVICES_PG, prepared.marks)
        return inserted

    def _insert_sqlite(self, conn: Connection, rows: list[tuple[Any, ...]]) -> int:
        params = []
        for row in rows:
            d = dict(zip(COLUMNS, row, strict=True))
            d["values"] = json.loads(d["values"])
            d["inference"] = json.loads(d["inference"]) if d["inference"] else None
            d["tensors"] = json.loads(d["tensors"]) if d["tensors"] else None
            params.append(d)
        before = conn.execute(sa.select(sa.func.count()).select_from(READINGS)).scalar_one()
        conn.execute(self._insert(READINGS).on_conflict_do_nothing(), params)
        after = conn.execute(sa.select(sa.func.count()).select_from(READINGS)).scalar_one()
        return int(after - before)

    def _devices_sqlite(self, conn: Connection, accepted: list[Accepted]) -> None:
        agg = _device_marks(accepted)
        devs = list(agg)
        ins = self._insert(DEVICES)
        stmt = ins.on_conflict_do_update(
            index_elements=[DEVICES.c.device_id],
            set_={
                "last_seq": sa.func.max(DEVICES.c.last_seq, ins.excluded.last_seq),
                "last_seen": sa.func.max(DEVICES.c.last_seen, ins.excluded.last_seen),
                "readings": DEVICES.c.readings + ins.excluded.readings,
            },
        )
        conn.execute(
            stmt,
            [
                {
                    "device_id": d,
                    "last_seq": agg[d][0],
                    "last_seen": ts_of(agg[d][1]),
                    "readings": agg[d][2],
                }
                for d in devs
            ],
        )

    # --- outbox ---------------------------------------------------------------------------
    def mark_published(self, committed: Mapping[int, float]) -> None:
        """Set ``published_at`` (now) and the measured ``committed_at`` of those batches."""
        if not committed:
            return
        stmt = (
            OUTBOX.update()
            .where(OUTBOX.c.batch_id == sa.bindparam("b_id"))
            .values(
                published_at=sa.func.now(),
                committed_at=sa.func.coalesce(sa.bindparam("c_at"), OUTBOX.c.created_at),
            )
        )
        params = [{"b_id": b, "c_at": ts_of(c) if c else None} for b, c in committed.items()]
        try:
            with self.engine.begin() as conn:
                conn.execute(stmt, params)
        except TRANSIENT_ERRORS as exc:
            raise TransportError(f"edge database: {exc}") from exc

    def unpublished(self) -> Iterator[tuple[int, list[StoredReading]]]:
        """Committed batches whose events the broker has not acknowledged, oldest first."""
        with self.engine.connect() as conn:
            ids = (
                conn.execute(
                    sa.select(OUTBOX.c.batch_id)
                    .where(OUTBOX.c.published_at.is_(None))
                    .order_by(OUTBOX.c.batch_id)
                )
                .scalars()
                .all()
            )
            for batch_id in ids:
                q = sa.select(
                    READINGS.c.device_id,
                    READINGS.c.seq,
                    READINGS.c.ts,
                    READINGS.c["values"],
                    READINGS.c.inference,
                )
                rows = conn.execute(
                    q.where(READINGS.c.batch_id == batch_id).order_by(
                        READINGS.c.device_id, READINGS.c.seq
                    )
                )
                yield (
                    int(batch_id),
                    [
                        StoredReading(
                            d,
                            s,
                            t if t.tzinfo else t.replace(tzinfo=UTC),
                            json.dumps(v, separators=(",", ":")),
                            json.dumps(i, separators=(",", ":")) if i else None,
                        )
                        for d, s, t, v, i in rows
                    ],
                )

    def unpublished_count(self) -> int:
        with self.engine.connect() as conn:
            q = sa.select(sa.func.coalesce(sa.func.sum(OUTBOX.c.readings), 0))
            return int(conn.execute(q.where(OUTBOX.c.published_at.is_(None))).scalar_one())

    # --- retention --------------------------------------------------------------------------
    def delete_older_than(self, cutoff: datetime, chunk: int) -> int:
        """Delete published readings received before ``cutoff``, ``chunk`` rows a statement."""
        key = sa.tuple_(READINGS.c.device_id, READINGS.c.seq)
        old = (
            sa.select(READINGS.c.device_id, READINGS.c.seq)
            .join(OUTBOX, OUTBOX.c.batch_id == READINGS.c.batch_id)
            .where(READINGS.c.received_at < cutoff, OUTBOX.c.published_at.is_not(None))
            .limit(chunk)
        )
        total = 0
        while True:
            with self.engine.begin() as conn:
                n = conn.execute(READINGS.delete().where(key.in_(old))).rowcount
            total += n
            if n < chunk:
                break
        if not self.is_postgres:  # Postgres deletes them with their reading (ON DELETE CASCADE)
            blob_key = sa.tuple_(BLOBS.c.device_id, BLOBS.c.seq)
            with self.engine.begin() as conn:
                conn.execute(
                    BLOBS.delete().where(
                        ~blob_key.in_(sa.select(READINGS.c.device_id, READINGS.c.seq))
                    )
                )
        empty = ~sa.exists().where(READINGS.c.batch_id == OUTBOX.c.batch_id)
        with self.engine.begin() as conn:
            conn.execute(
                OUTBOX.delete().where(
                    OUTBOX.c.published_at.is_not(None), OUTBOX.c.created_at < cutoff, empty
                )
            )
            conn.execute(DEAD.delete().where(DEAD.c.received_at < cutoff))
        return total


def _device_marks(accepted: list[Accepted]) -> dict[str, list[Any]]:
    """device -> [max seq, latest received_at, readings] of the batch."""
    agg: dict[str, list[Any]] = {}
    for a in accepted:
        device, seq, at = a.reading.device_id, a.reading.seq, a.received_at
        mark = agg.get(device)
        if mark is None:
            agg[device] = [seq, at, 1]
        else:
            if seq > mark[0]:
                mark[0] = seq
            if at > mark[1]:
                mark[1] = at
            mark[2] += 1
    return agg


def _dead_row(d: DeadLetter) -> dict[str, Any]:
    return {
        "received_at": ts_of(d.received_at or time.time()),
        "topic": d.topic[:1024],
        "reason": d.reason,
        "detail": d.detail[:4000],
        "payload": d.payload,
        "device_id": d.device_id,
        "seq": d.seq,
    }
