"""Edge nodes (``read`` scope): labels, last heartbeat, active models, counters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from edgecloud.cloud.api import hops, queries
from edgecloud.cloud.api.deps import ReadScope, SessionDep, in_thread
from edgecloud.cloud.api.errors import BadRequest, NotFound, responses
from edgecloud.cloud.api.params import check_id, decode_cursor, encode_cursor, valid_id
from edgecloud.cloud.api.schemas import ModelStatusOut, NodeDetail, NodeOut, NodePage
from edgecloud.cloud.db import Node
from edgecloud.cloud.presence import ONLINE_WITHIN

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


def parse_selector(text: str | None) -> dict[str, str]:
    """``site=a,zone=b`` -> labels every listed node must carry."""
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise BadRequest("bad_selector", f"selector part {part[:64]!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


def _node_fields(node: Node, now: datetime, stored: dict[str, int]) -> dict[str, Any]:
    last = queries.aware(node.last_heartbeat)
    return {
        "node_id": node.node_id,
        "labels": {str(k): str(v) for k, v in (node.labels or {}).items()},
        "status": "online" if now - last <= ONLINE_WITHIN else "stale",
        "first_seen": node.first_seen,
        "last_heartbeat": last,
        "active_models": list(node.active_models or []),
        "counters": dict(node.counters or {}),
        "spool_depth": node.spool_depth,
        "hops": hops.node_hops(node, stored.get(node.node_id, 0)),
    }


@router.get("", response_model=NodePage, responses=responses(400, 401, 403, 422))
async def list_nodes(
    _: ReadScope,
    session: SessionDep,
    selector: Annotated[str | None, Query(max_length=512, description="k=v,k2=v2")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> NodePage:
    wanted = parse_selector(selector)
    key = decode_cursor(cursor, ("node_id",))
    after = str(key["node_id"]) if key else None
    if after is not None and not valid_id(after):
        return NodePage(items=[], next_cursor=None)
    rows = await in_thread(queries.nodes_page, session, after, limit)
    stored = await in_thread(hops.cloud_readings_by_node, session, [n.node_id for n in rows])
    now = datetime.now(UTC)
    items = [
        NodeOut.model_validate(_node_fields(n, now, stored))
        for n in rows
        if all((n.labels or {}).get(k) == v for k, v in wanted.items())
    ]
    next_cursor = encode_cursor({"node_id": rows[-1].node_id}) if len(rows) == limit else None
    return NodePage(items=items, next_cursor=next_cursor)


@router.get("/{node_id}", response_model=NodeDetail, responses=responses(401, 403, 404, 422))
async def get_node(_: ReadScope, session: SessionDep, node_id: str) -> NodeDetail:
    check_id(node_id, "node")
    found = await in_thread(queries.node_detail, session, node_id)
    if found is None:
        raise NotFound("unknown_node", f"no node {node_id!r}")
    node, model_status, devices = found
    stored = await in_thread(hops.cloud_readings_by_node, session, [node_id])
    status = [ModelStatusOut.model_validate(s, from_attributes=True) for s in model_status]
    return NodeDetail.model_validate(
        {
            **_node_fields(node, datetime.now(UTC), stored),
            "agent": node.agent,
            "bridge": node.bridge,
            "agent_heartbeat": node.agent_heartbeat,
            "bridge_heartbeat": node.bridge_heartbeat,
            "devices": devices,
            "model_status": status,
        }
    )
