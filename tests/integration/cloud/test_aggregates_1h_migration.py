"""The migration that adds aggregates_1h backfills it from the aggregates_1m rows already there,
so an existing database answers whole-hour buckets as before."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from rollup_check import rollups

from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate


def test_migration_backfills_the_hours_from_the_minutes(pg_url: str) -> None:
    migrate(pg_url, "0006_registry_rollouts")  # the schema before aggregates_1h
    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            # 3 devices x 2 metrics x 300 minutes (5 UTC hours, some minutes missing),
            # decimal sums that floats would not add exactly
            conn.execute(
                sa.text(
                    """
                    INSERT INTO aggregates_1m (device_id, metric, bucket, count, sum, min, max,
                                               anomaly_count)
                    SELECT 'dev-' || d, m, TIMESTAMPTZ '2026-11-22 09:00:00+00'
                                             + i * interval '1 minute',
                           1 + i % 7, round((i * 0.37 + d)::numeric, 3) * (1 + i % 7),
                           i * 0.37 + d - 1.5, i * 0.37 + d + 2.25, i % 3
                    FROM generate_series(0, 2) AS d, unnest(ARRAY['t', 'p']) AS m,
                         generate_series(0, 299) AS i
                    WHERE i % 11 <> 4
                    """
                )
            )
        migrate(pg_url)
        r = rollups(engine)
    finally:
        engine.dispose()
    assert len(r["1m"]) == 3 * 2 * (300 - 27)
    assert r["1h"] == r["1h_from_1m"] and len(r["1h"]) == 3 * 2 * 5
    # and folded here, independently of the SQL
    acc: dict[tuple[str, str, datetime], list[Any]] = {}
    for (dev, metric, b), (n, total, lo, hi, an) in r["1m"].items():
        a = acc.setdefault((dev, metric, b.replace(minute=0)), [0, Decimal(0), lo, hi, 0])
        a[0] += n
        a[1] += total
        a[2], a[3] = min(a[2], lo), max(a[3], hi)
        a[4] += an
    assert r["1h"] == {k: tuple(v) for k, v in acc.items()}
