"""A node's own routes (``node`` token, its own node id only): desired state and, as a
fallback to the Kafka path, its ``model_status`` reports.

``GET /api/v1/nodes/{node_id}/desired``: ETag / ``If-None-Match`` -> 304; ``?wait=S`` holds a
304 answer up to S seconds (at most 60) until the desired state changes (long-poll).

``POST /api/v1/nodes/{node_id}/model-status``: one ``model_status`` event envelope (CONTRACT
section 3), stored exactly as the worker stores one from Kafka (idempotent on ``event_id``).
Nodes normally publish these on their broker; this route serves tests and nodes without a
bridge.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from edgecloud.cloud.api.deps import NodeScope, in_thread
from edgecloud.cloud.api.errors import ApiError, responses
from edgecloud.cloud.api.routes.models import RuntimeDep
from edgecloud.cloud.auth import Principal
from edgecloud.cloud.rollouts.desired import desired_state
from edgecloud.cloud.rollouts.runtime import ModelsRuntime
from edgecloud.cloud.rollouts.status import store_model_status
from edgecloud.core.desired import etag_of
from edgecloud.core.events import ModelStatusEvent

router = APIRouter(prefix="/api/v1/nodes", tags=["desired"])
RECHECK_S = 5.0  # re-read even unwoken: another API replica may have changed it


def own_node(principal: Principal, node_id: str) -> None:
    """Node isolation: a node token acts only for its own node id."""
    if principal.node_id != node_id:
        raise ApiError(403, "forbidden", f"this token acts for node {principal.node_id!r}")


@router.get(
    "/{node_id}/desired",
    responses={**responses(401, 403, 422), 304: {"description": "unchanged"}},
)
async def get_desired(
    principal: NodeScope,
    rt: RuntimeDep,
    request: Request,
    node_id: str,
    wait: Annotated[float, Query(ge=0, le=60, description="long-poll seconds")] = 0,
) -> Response:
    own_node(principal, node_id)
    known = request.headers.get("if-none-match")
    deadline = time.monotonic() + wait
    touch = True
    while True:
        body = await in_thread(_desired, rt, node_id, touch)
        touch = False
        etag = etag_of(body)
        if known != etag:
            return JSONResponse(body, headers={"ETag": etag, "Cache-Control": "no-cache"})
        left = deadline - time.monotonic()
        if left <= 0:
            if wait >= 1:  # the node waited all along: it is online (see engine._online)
                await in_thread(_desired, rt, node_id, True)
            return Response(status_code=304, headers={"ETag": etag})
        await rt.desired_changed.wait(node_id, min(left, RECHECK_S))
        if await request.is_disconnected():
            return Response(status_code=304, headers={"ETag": etag})


def _desired(rt: ModelsRuntime, node_id: str, touch: bool) -> dict[str, Any]:
    with rt.session() as session:
        return desired_state(session, node_id, touch).body()


def _store_status(rt: ModelsRuntime, ev: ModelStatusEvent) -> bool:
    with rt.session() as session:
        new = store_model_status(session.connection(), [ev]) == 1
        session.commit()
        return new


@router.post("/{node_id}/model-status", status_code=202, responses=responses(400, 401, 403, 422))
async def post_model_status(
    principal: NodeScope, rt: RuntimeDep, node_id: str, event: ModelStatusEvent
) -> dict[str, Any]:
    own_node(principal, node_id)
    if event.node_id != node_id:
        raise ApiError(400, "node_mismatch", f"event is from {event.node_id!r}, path {node_id!r}")
    new = await in_thread(_store_status, rt, event)
    rt.changed()  # the engine looks at the report soon; no node's desired state changed yet
    return {"event_id": str(event.event_id), "stored": new}
