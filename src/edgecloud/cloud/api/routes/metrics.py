"""``GET /metrics``: Prometheus text. Needs a ``read`` token, like every route but /healthz
(Prometheus sends it with ``authorization: {credentials: <token>}`` in its scrape config).

Besides the request counters of ``middleware.RequestMetrics``, ``FleetCollector`` reports
fleet totals read from the database at scrape time (cheap counts; no table scan of readings):
per node its last heartbeat and per-hop counters (``hops.py``), rollouts by state, rollout nodes
by status, and the escalation token budget the worker last published.
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

from edgecloud.cloud.api import hops, queries
from edgecloud.cloud.api.deps import ReadScope, StateDep, in_thread
from edgecloud.cloud.api.errors import responses
from edgecloud.cloud.escalation.state import escalation_status

router = APIRouter(tags=["metrics"])


class FleetCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with Session(self._engine) as session:
            totals = queries.fleet_totals(session)
            escalations = queries.escalation_counts(session)
            node_rows = queries.nodes_page(session, None, 10_000)
            per_hop = hops.all_node_hops(session)
            rollouts, rollout_nodes = hops.rollout_state_counts(session)
            budget = escalation_status(session)
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
        last = GaugeMetricFamily(
            "edgecloud_node_last_heartbeat_timestamp_seconds",
            "unix time of the node's last heartbeat (agent or bridge) in the cloud",
            labels=["node_id"],
        )
        for node in node_rows:
            last.add_metric([node.node_id], queries.aware(node.last_heartbeat).timestamp())
        yield last
        hop = GaugeMetricFamily(
            "edgecloud_node_hop",
            "per-hop counters of a node (GET /api/v1/nodes/{id})",
            labels=["node_id", "hop"],
        )
        for node_id, values in sorted(per_hop.items()):
            for name, count in values.items():
                if count is not None:
                    hop.add_metric([node_id, name], count)
        yield hop
        ro = GaugeMetricFamily("edgecloud_rollouts", "rollouts by state", labels=["state"])
        for state, value in sorted(rollouts.items()):
            ro.add_metric([state], value)
        yield ro
        ron = GaugeMetricFamily(
            "edgecloud_rollout_nodes", "rollout nodes by status", labels=["status"]
        )
        for status, value in sorted(rollout_nodes.items()):
            ron.add_metric([status], value)
        yield ron
        for key, name in (
            ("tokens_used", "edgecloud_escalation_tokens_used"),
            ("token_budget", "edgecloud_escalation_token_budget"),
        ):
            spent = budget.get(key)
            if isinstance(spent, int | float):
                yield GaugeMetricFamily(name, f"escalation {key} (worker's last publish)", spent)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **responses(401, 403)},
)
async def metrics(_: ReadScope, state: StateDep) -> Response:
    text = await in_thread(generate_latest, state.registry)  # FleetCollector queries the DB
    return Response(text, media_type=CONTENT_TYPE_LATEST)
