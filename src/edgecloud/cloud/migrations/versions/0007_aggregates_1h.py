"""aggregates_1h: the hourly rollup of aggregates_1m, backfilled from it

Revision ID: 0007_aggregates_1h
Revises: 0006_registry_rollouts
Create Date: 2026-12-02 06:40:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision: str = "0007_aggregates_1h"
down_revision: str | None = "0006_registry_rollouts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The minute rows folded per UTC hour: what the worker would have written had it kept the
# rollup from the start (counts add up, numeric sums are exact, min/max fold).
BACKFILL_PG = """
INSERT INTO aggregates_1h (device_id, metric, bucket, count, sum, min, max, anomaly_count)
SELECT device_id, metric, date_trunc('hour', bucket, 'UTC'), sum(count), sum(sum), min(min),
       max(max), sum(anomaly_count)
FROM aggregates_1m GROUP BY 1, 2, 3
"""


def _columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("bucket", TS, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("sum", sa.Numeric(asdecimal=False), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("anomaly_count", sa.BigInteger(), nullable=False),
    ]


def _backfill_in_python(conn: sa.Connection) -> None:
    """SQLite has no ``date_trunc``: fold the minute rows here (a quick local database)."""
    minutes = sa.table("aggregates_1m", *(sa.column(c.name, c.type) for c in _columns()))
    acc: dict[tuple[str, str, datetime], list[Any]] = {}
    for r in conn.execute(sa.select(minutes)):
        b = r.bucket if r.bucket.tzinfo else r.bucket.replace(tzinfo=UTC)
        key = (r.device_id, r.metric, b.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
        a = acc.get(key)
        if a is None:
            acc[key] = [r.count, r.sum, r.min, r.max, r.anomaly_count]
        else:
            a[0] += r.count
            a[1] += r.sum
            a[2] = min(a[2], r.min)
            a[3] = max(a[3], r.max)
            a[4] += r.anomaly_count
    if acc:
        hours = sa.table("aggregates_1h", *(sa.column(c.name, c.type) for c in _columns()))
        names = ("count", "sum", "min", "max", "anomaly_count")
        conn.execute(
            sa.insert(hours),
            [
                {"device_id": d, "metric": m, "bucket": b, **dict(zip(names, v, strict=True))}
                for (d, m, b), v in acc.items()
            ],
        )


def upgrade() -> None:
    op.create_table(
        "aggregates_1h", *_columns(), sa.PrimaryKeyConstraint("device_id", "metric", "bucket")
    )
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(BACKFILL_PG))
    else:
        _backfill_in_python(conn)


def downgrade() -> None:
    op.drop_table("aggregates_1h")
