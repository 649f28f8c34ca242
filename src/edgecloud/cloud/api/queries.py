"""The SQL behind the read routes. Routes stay thin; every query here is keyset-paginated or
bounded, and uses an index of ``cloud/db.py`` (see docs/cloud-api.md).

Aggregates come from the worker's rollups: ``aggregates_1h`` when the bucket is a whole number
of hours on Postgres (``since`` / ``until`` are on the bucket grid, hence on whole hours),
``aggregates_1m`` otherwise; at a bucket larger than the table's, re-aggregated in SQL with
``date_bin`` on Postgres, in Python elsewhere (SQLite, for a quick local run, reads minutes).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, text, tuple_
from sqlmodel import Session, col, select

from edgecloud.cloud.api.params import floor_to
from edgecloud.cloud.api.pgpool import AsyncPgPool
from edgecloud.cloud.db import (
    Device,
    Escalation,
    ModelStatusLatest,
    Node,
    Reading,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)


def rollup(step: timedelta) -> tuple[str, bool]:
    """The table a ``step`` bucket is read from on Postgres, and whether its rows must be
    re-aggregated (``step`` larger than the table's grain).

    A whole number of hours reads ``aggregates_1h``: 1 row per hour instead of 60 (the 1h
    bucket over a day was ~1,666 minute rows, an index scan, a sort and numeric sums: 2.3 ms of
    Postgres against 0.5 ms for 1m buckets). The answer is the same: counts and numeric sums
    add up exactly, min/max fold, and an hour row lies within one step bucket since the step
    grid counts whole hours from the epoch."""
    if step % _HOUR == timedelta(0):
        return "aggregates_1h", step > _HOUR
    return "aggregates_1m", step > _MINUTE


_PG_REBUCKET_SQL = (
    "SELECT metric, date_bin(:step, bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS b,"
    " sum(count) AS n, min(min) AS lo, max(max) AS hi, sum(sum) AS total,"
    " sum(anomaly_count) AS anomalies"
    " FROM {table}"
    " WHERE device_id = :device_id AND bucket >= :since AND bucket < :until"
    " AND (CAST(:metric AS text) IS NULL OR metric = CAST(:metric AS text))"
    " GROUP BY metric, b ORDER BY metric, b"
)
_ROWS_SQL = (
    "SELECT metric, bucket, count, min, max, sum, anomaly_count FROM {table}"
    " WHERE device_id = :device_id AND bucket >= :since AND bucket < :until"
    " AND (CAST(:metric AS text) IS NULL OR metric = CAST(:metric AS text))"
    " ORDER BY metric, bucket"
)
# (table, re-aggregate) -> the SQLAlchemy statement
_SA_AGGREGATES = {
    (table, again): text((_PG_REBUCKET_SQL if again else _ROWS_SQL).format(table=table))
    for table in ("aggregates_1m", "aggregates_1h")
    for again in (False, True)
}
_MINUTES = _SA_AGGREGATES[("aggregates_1m", False)]

# The same statements for the async psycopg path (Postgres), in psycopg's param style, with
# the same column names (metric, b, n, lo, hi, total, anomalies). Each in two forms, for one
# metric and for all: "(%(metric)s IS NULL OR metric = %(metric)s)" in one statement kept the
# metric out of the index condition once psycopg prepared it (Postgres' generic plan), so a
# one-metric query read and filtered out the other metrics' rows: 3 times the rows, about
# 1.5 ms of Postgres CPU per query.
_WHERE = "WHERE device_id = %(device_id)s AND bucket >= %(since)s AND bucket < %(until)s"
_ONE_METRIC = " AND metric = %(metric)s::text"
PG_ROWS = (
    "SELECT metric, bucket AS b, count AS n, min AS lo, max AS hi, sum AS total,"
    " anomaly_count AS anomalies FROM {table} {where} ORDER BY metric, bucket"
)
PG_REBUCKET = (
    "SELECT metric, date_bin(%(step)s, bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS b,"
    " sum(count) AS n, min(min) AS lo, max(max) AS hi, sum(sum) AS total,"
    " sum(anomaly_count) AS anomalies"
    " FROM {table} {where} GROUP BY metric, b ORDER BY metric, b"
)


def _items_json(rows_sql: str) -> str:
    """``rows_sql``'s rows as the answer's ``items`` JSON array, built by Postgres: one text
    value back instead of a Python object per value, a ``Point`` and a dict per row, and
    ``json.dumps`` (about a third of the route's CPU on 60 to 170 rows). The same values:
    ``mean`` is ``float8(sum) / count`` as in ``Point.mean``, floats print in their shortest
    exact form (Postgres' default ``extra_float_digits = 1``), buckets as ``...T10:00:00Z``."""
    return (
        "SELECT coalesce(json_agg(json_build_object("
        "'metric', metric,"
        " 'bucket', to_char(b AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " 'count', n, 'min', lo, 'max', hi,"
        " 'mean', CASE WHEN n > 0 THEN total::float8 / n::float8 ELSE 0 END,"
        " 'anomaly_count', anomalies) ORDER BY metric, b), '[]')::text"
        f" FROM ({rows_sql}) AS rows"
    )


# (table, re-aggregate, one metric) -> the statement
_PG_ITEMS_JSON = {
    (table, again, one): _items_json(
        (PG_REBUCKET if again else PG_ROWS).format(
            table=table, where=_WHERE + (_ONE_METRIC if one else "")
        )
    )
    for table in ("aggregates_1m", "aggregates_1h")
    for again in (False, True)
    for one in (False, True)
}


def pg_items_json_sql(step: timedelta, metric: str | None) -> str:
    """The statement ``aggregates_pg_json`` sends (the REST benchmark's limit sends it too)."""
    return _PG_ITEMS_JSON[(*rollup(step), metric is not None)]


PG_DEVICE_EXISTS = "SELECT 1 FROM devices WHERE device_id = %(device_id)s"


@dataclass(frozen=True)
class Point:
    metric: str
    bucket: datetime
    count: int
    min: float
    max: float
    sum: float
    anomaly_count: int

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0


def aware(ts: datetime) -> datetime:
    """SQLite gives naive datetimes back; the API always answers in UTC with a zone."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def device_exists(session: Session, device_id: str) -> bool:
    return session.get(Device, device_id) is not None


def devices_page(
    session: Session, node_id: str | None, after: str | None, limit: int
) -> Sequence[Device]:
    query = select(Device).order_by(col(Device.device_id)).limit(limit)
    if node_id is not None:
        query = query.where(col(Device.node_id) == node_id)
    if after is not None:
        query = query.where(col(Device.device_id) > after)
    return session.exec(query).all()


def readings_page(
    session: Session,
    device_id: str,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, int] | None,
    limit: int,
    newest_first: bool,
) -> Sequence[Reading]:
    key = tuple_(col(Reading.ts), col(Reading.seq))
    query = select(Reading).where(col(Reading.device_id) == device_id)
    if since is not None:
        query = query.where(col(Reading.ts) >= since)
    if until is not None:
        query = query.where(col(Reading.ts) < until)
    if after is not None:
        query = query.where(key < after if newest_first else key > after)
    if newest_first:
        query = query.order_by(col(Reading.ts).desc(), col(Reading.seq).desc())
    else:
        query = query.order_by(col(Reading.ts), col(Reading.seq))
    return session.exec(query.limit(limit)).all()


def aggregates(
    session: Session,
    device_id: str,
    metric: str | None,
    step: timedelta,
    since: datetime,
    until: datetime,
) -> list[Point]:
    """The hot path of the dashboards (and of the REST benchmark): plain SQL, tuples back, no
    ORM objects (which cost about 1 ms of CPU per 60 rows here)."""
    params: dict[str, Any] = {
        "device_id": device_id,
        "metric": metric,
        "since": since,
        "until": until,
    }
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        rows = session.execute(_SA_AGGREGATES[rollup(step)], {**params, "step": step}).all()
    else:
        rows = session.execute(_MINUTES, params).all()
    points = [Point(r[0], aware(r[1]), int(r[2]), r[3], r[4], float(r[5]), int(r[6])) for r in rows]
    return points if postgres or step == timedelta(minutes=1) else rebucket(points, step)


async def aggregates_pg_json(
    pool: AsyncPgPool,
    device_id: str,
    metric: str | None,
    step: timedelta,
    since: datetime,
    until: datetime,
) -> tuple[str, bool]:
    """``aggregates_or_unknown`` on Postgres through the async pool (no thread hop), the
    points as the JSON text of the answer's ``items`` (see ``_items_json``)."""
    params: dict[str, Any] = {
        "device_id": device_id,
        "metric": metric,
        "since": since,
        "until": until,
        "step": step,
    }
    async with pool.connection() as conn:
        cur = await conn.execute(pg_items_json_sql(step, metric).encode(), params)
        row = await cur.fetchone()
        items = str(row[0]) if row is not None else "[]"
        if items != "[]":
            return items, True
        cur = await conn.execute(PG_DEVICE_EXISTS.encode(), params)
        return items, await cur.fetchone() is not None


def rebucket(points: list[Point], step: timedelta) -> list[Point]:
    """Fold minute points (sorted by metric, bucket) into ``step`` buckets."""
    out: list[Point] = []
    for p in points:
        start = floor_to(p.bucket, step)
        last = out[-1] if out else None
        if last is not None and last.metric == p.metric and last.bucket == start:
            out[-1] = Point(
                p.metric,
                start,
                last.count + p.count,
                min(last.min, p.min),
                max(last.max, p.max),
                last.sum + p.sum,
                last.anomaly_count + p.anomaly_count,
            )
        else:
            out.append(Point(p.metric, start, p.count, p.min, p.max, p.sum, p.anomaly_count))
    return out


def readings_or_unknown(
    session: Session,
    device_id: str,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, int] | None,
    limit: int,
    newest_first: bool,
) -> tuple[Sequence[Reading], bool]:
    """A page of readings, and whether the device is known (only asked on an empty page)."""
    rows = readings_page(session, device_id, since, until, after, limit, newest_first)
    return rows, bool(rows) or after is not None or device_exists(session, device_id)


def aggregates_or_unknown(
    session: Session,
    device_id: str,
    metric: str | None,
    step: timedelta,
    since: datetime,
    until: datetime,
) -> tuple[list[Point], bool]:
    points = aggregates(session, device_id, metric, step, since, until)
    return points, bool(points) or device_exists(session, device_id)


def anomalies_page(
    session: Session,
    device_id: str | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[tuple[Reading, Escalation | None]]:
    query = (
        select(Reading, Escalation)
        .outerjoin(Escalation, col(Escalation.event_id) == col(Reading.event_id))
        .where(col(Reading.anomaly).is_(True))
        .order_by(col(Reading.ts).desc(), col(Reading.event_id).desc())
        .limit(limit)
    )
    if device_id is not None:
        query = query.where(col(Reading.device_id) == device_id)
    if since is not None:
        query = query.where(col(Reading.ts) >= since)
    if until is not None:
        query = query.where(col(Reading.ts) < until)
    if after is not None:
        query = query.where(tuple_(col(Reading.ts), col(Reading.event_id)) < after)
    return [(r, e) for r, e in session.execute(query).all()]


def nodes_page(session: Session, after: str | None, limit: int) -> Sequence[Node]:
    query = select(Node).order_by(col(Node.node_id)).limit(limit)
    if after is not None:
        query = query.where(col(Node.node_id) > after)
    return session.exec(query).all()


def node_detail(
    session: Session, node_id: str
) -> tuple[Node, Sequence[ModelStatusLatest], int] | None:
    node = session.get(Node, node_id)
    if node is None:
        return None
    return node, node_model_status(session, node_id), node_device_count(session, node_id)


def node_model_status(session: Session, node_id: str) -> Sequence[ModelStatusLatest]:
    return session.exec(
        select(ModelStatusLatest)
        .where(col(ModelStatusLatest.node_id) == node_id)
        .order_by(col(ModelStatusLatest.model))
    ).all()


def node_device_count(session: Session, node_id: str) -> int:
    query = select(func.count()).select_from(Device).where(col(Device.node_id) == node_id)
    return int(session.exec(query).one())


def escalation_counts(session: Session) -> dict[str, int]:
    query = select(col(Escalation.status), func.count()).group_by(col(Escalation.status))
    return {status: int(n) for status, n in session.exec(query).all()}


def fleet_totals(session: Session) -> dict[str, int]:
    """Cheap counts for /metrics (readings come from the per-device counters, not a scan)."""
    devices, readings = session.exec(
        select(func.count(), func.coalesce(func.sum(col(Device.readings)), 0)).select_from(Device)
    ).one()
    nodes = session.exec(select(func.count()).select_from(Node)).one()
    anomalies = session.exec(
        select(func.count()).select_from(Reading).where(col(Reading.anomaly).is_(True))
    ).one()
    return {
        "devices": int(devices),
        "readings": int(readings),
        "nodes": int(nodes),
        "anomalies": int(anomalies),
    }
