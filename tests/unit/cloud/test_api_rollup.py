"""Which table a bucket is read from on Postgres (``queries.rollup``) and the statements."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edgecloud.cloud.api import queries
from edgecloud.cloud.api.params import parse_bucket


@pytest.mark.parametrize(
    ("bucket", "table", "again"),
    [
        ("1m", "aggregates_1m", False),
        ("5m", "aggregates_1m", True),
        ("90m", "aggregates_1m", True),
        ("1h", "aggregates_1h", False),
        ("2h", "aggregates_1h", True),
        ("1d", "aggregates_1h", True),
        ("7d", "aggregates_1h", True),
    ],
)
def test_whole_hours_read_the_hourly_rollup(bucket: str, table: str, again: bool) -> None:
    step = parse_bucket(bucket)
    assert queries.rollup(step) == (table, again)
    for metric in ("temperature", None):
        sql = queries.pg_items_json_sql(step, metric)
        other = ({"aggregates_1m", "aggregates_1h"} - {table}).pop()
        assert f"FROM {table} " in sql and other not in sql
        assert ("date_bin" in sql) == again
        assert ("%(metric)s" in sql) == (metric is not None)


def test_the_statements_differ_only_in_the_table() -> None:
    hours = queries.pg_items_json_sql(timedelta(days=1), None)
    minutes = queries._PG_ITEMS_JSON[("aggregates_1m", True, False)]
    assert hours.replace("aggregates_1h", "aggregates_1m") == minutes
