"""``GET /metrics``: Prometheus text. Needs a ``read`` token, like every route but /healthz
(Prometheus sends it with ``authorization: {credentials: <token>}`` in its scrape config).

Besides the request counters of ``middleware.RequestMetrics``, ``FleetCollector`` reports
fleet totals read from the database at scrape time (cheap counts; no table scan of readings).
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import Session

from edgecloud.cloud.api import queries
from edgecloud.cloud.api.deps import ReadScope, StateDep, in_thread
from edgecloud.cloud.api.errors import responses

router = APIRouter(tags=["metrics"])


class FleetCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with Session(self._engine) as session:
            totals = queries.fleet_totals(session)
            escalations = queries.escalation_counts(session)
        fleet = GaugeMetricFamily(
            "edgecloud_fleet", "fleet totals in the cloud database", labels=["what"]
        )
        for what, value in totals.items():
            fleet.add_metric([what], value)
        yield fleet
        esc = GaugeMetricFamily("edgecloud_escalations", "escalations by status", labels=["status"])
        for status, value in escalations.items():
            esc.add_metric([status], value)
        yield esc


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **responses(401, 403)},
)
async def metrics(_: ReadScope, state: StateDep) -> Response:
    text = await in_thread(generate_latest, state.registry)  # FleetCollector queries the DB
    return Response(text, media_type=CONTENT_TYPE_LATEST)
