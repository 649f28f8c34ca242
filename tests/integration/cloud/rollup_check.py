"""Checks shared by the tests of the aggregates rollups: ``aggregates_1h`` against a fresh
re-aggregation of ``aggregates_1m`` and of ``readings``, in SQL, exactly (numeric sums)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

Key = tuple[str, str, datetime]
Row = tuple[int, Decimal, float, float, int]

_COLUMNS = "device_id, metric, bucket, count, sum, min, max, anomaly_count"
_FROM_READINGS = """
SELECT r.device_id, kv.key, date_trunc('{grain}', r.ts, 'UTC'), count(*),
       sum(kv.value::numeric), min(kv.value::float8), max(kv.value::float8),
       count(*) FILTER (WHERE r.anomaly)
FROM readings r CROSS JOIN LATERAL jsonb_each(r."values") kv
WHERE jsonb_typeof(kv.value) = 'number'
GROUP BY 1, 2, 3
"""
HOURS_FROM_MINUTES = """
SELECT device_id, metric, date_trunc('hour', bucket, 'UTC'), sum(count), sum(sum), min(min),
       max(max), sum(anomaly_count)
FROM aggregates_1m GROUP BY 1, 2, 3
"""


def table(conn: sa.Connection, sql: str) -> dict[Key, Row]:
    return {
        (r[0], r[1], r[2]): (int(r[3]), Decimal(r[4]), float(r[5]), float(r[6]), int(r[7]))
        for r in conn.execute(sa.text(sql)).all()
    }


def rollups(engine: sa.Engine) -> dict[str, dict[Key, Row]]:
    """Both rollup tables as stored, and as re-aggregated from scratch."""
    with engine.connect() as conn:
        return {
            "1m": table(conn, f"SELECT {_COLUMNS} FROM aggregates_1m"),
            "1h": table(conn, f"SELECT {_COLUMNS} FROM aggregates_1h"),
            "1m_from_readings": table(conn, _FROM_READINGS.format(grain="minute")),
            "1h_from_readings": table(conn, _FROM_READINGS.format(grain="hour")),
            "1h_from_1m": table(conn, HOURS_FROM_MINUTES),
        }


def assert_rollups_consistent(engine: sa.Engine) -> dict[str, Any]:
    """aggregates_1h == aggregates_1m folded per hour == readings folded per hour (and the
    minutes == readings folded per minute), row for row, sums exact."""
    r = rollups(engine)
    assert r["1m"] == r["1m_from_readings"]
    assert r["1h"] == r["1h_from_1m"]
    assert r["1h"] == r["1h_from_readings"]
    return r
