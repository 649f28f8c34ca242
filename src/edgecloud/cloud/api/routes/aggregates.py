"""``GET /api/v1/aggregates``: per metric, per bucket count / min / max / mean / anomaly count.

Buckets are any whole number of minutes (1m, 5m, 15m, 1h, 1d ...), re-aggregated from the
``aggregates_1m`` rows the worker keeps (on Postgres, whole hours from its hourly rollup
``aggregates_1h``: ``queries.rollup``); ``since`` is rounded down and ``until`` up onto the
bucket grid (counted from the Unix epoch, so 1d buckets are UTC days). Defaults: ``until`` now,
``since`` one hour before ``until``. At most 10,000 buckets per metric per request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session

from edgecloud.cloud.api import queries
from edgecloud.cloud.api.deps import AppState, ReadScope, StateDep, in_thread
from edgecloud.cloud.api.errors import BadRequest, NotFound, responses
from edgecloud.cloud.api.params import (
    check_id,
    check_metric,
    check_range,
    floor_to,
    format_bucket,
    parse_bucket,
    parse_time,
)
from edgecloud.cloud.api.schemas import AggregatesOut

router = APIRouter(prefix="/api/v1/aggregates", tags=["aggregates"])
MAX_BUCKETS = 10_000
TimeParam = Annotated[
    str | None, Query(max_length=64, description="RFC 3339, epoch seconds or relative (-15m)")
]


@router.get(
    "",
    response_class=JSONResponse,
    responses={200: {"model": AggregatesOut}, **responses(400, 401, 403, 404, 422)},
)
async def get_aggregates(
    _: ReadScope,
    state: StateDep,
    device_id: Annotated[str, Query(max_length=64)],
    metric: Annotated[str | None, Query(max_length=64)] = None,
    bucket: Annotated[str, Query(max_length=16, description="1m, 5m, 15m, 1h, 1d ...")] = "1m",
    since: TimeParam = None,
    until: TimeParam = None,
) -> Response:
    """The body is built straight from the rows (no model per point: this is the route that
    dashboards poll; on Postgres, the database builds the items' JSON); its shape is
    ``AggregatesOut``, which a test checks. ``api/fastpath.py`` answers the well-formed
    requests of a cached token with ``body()`` too, without FastAPI's dependency solving."""
    text = await body(state, device_id, metric, bucket, since, until)
    return Response(text, media_type="application/json")


async def body(
    state: AppState,
    device_id: str,
    metric: str | None,
    bucket: str,
    since: str | None,
    until: str | None,
) -> str:
    """The answer's JSON text; raises ``ApiError`` (400, 404) for a bad request."""
    check_id(device_id, "device")
    check_metric(metric)
    step = parse_bucket(bucket)
    end = parse_time(until, "until") or datetime.now(UTC)
    start = parse_time(since, "since") or end - timedelta(hours=1)
    check_range(start, end)
    start = floor_to(start, step)
    if floor_to(end, step) != end:
        end = floor_to(end, step) + step
    if (end - start) / step > MAX_BUCKETS:
        raise BadRequest(
            "range_too_large",
            f"{(end - start) // step} buckets of {format_bucket(step)}; "
            f"at most {MAX_BUCKETS}: use a larger bucket or a shorter range",
        )
    head = {
        "device_id": device_id,
        "bucket": format_bucket(step),
        "since": _iso(start),
        "until": _iso(end),
    }
    if state.pg is not None:
        items, known = await queries.aggregates_pg_json(
            state.pg, device_id, metric, step, start, end
        )
        if not known:
            raise NotFound("unknown_device", f"no device {device_id!r}")
        # Postgres built the items array: splice it in as it came
        return json.dumps(head, separators=(",", ":"))[:-1] + ',"items":' + items + "}"
    points, known = await in_thread(_sync_aggregates, state, device_id, metric, step, start, end)
    if not known:
        raise NotFound("unknown_device", f"no device {device_id!r}")
    out = {
        **head,
        "items": [
            {
                "metric": p.metric,
                "bucket": _iso(p.bucket),
                "count": p.count,
                "min": p.min,
                "max": p.max,
                "mean": p.mean,
                "anomaly_count": p.anomaly_count,
            }
            for p in points
        ],
    }
    return json.dumps(out, allow_nan=False, separators=(",", ":"))


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _sync_aggregates(
    state: AppState,
    device_id: str,
    metric: str | None,
    step: timedelta,
    since: datetime,
    until: datetime,
) -> tuple[list[queries.Point], bool]:
    with Session(state.engine) as session:
        return queries.aggregates_or_unknown(session, device_id, metric, step, since, until)
