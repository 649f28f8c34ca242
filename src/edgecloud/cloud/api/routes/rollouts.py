"""Rollout routes: start, follow, steer (``operate``); read them (``read``).

The engine itself runs in the background of the API process (``cloud/rollouts/runtime.py``);
these routes write the request and wake it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from edgecloud.cloud.api.deps import OperateScope, ReadScope, SessionDep, in_thread
from edgecloud.cloud.api.errors import ApiError, NotFound, responses
from edgecloud.cloud.api.routes.models import RuntimeDep
from edgecloud.cloud.rollouts import engine
from edgecloud.cloud.rollouts.plan import Gates
from edgecloud.cloud.rollouts.tables import Rollout

router = APIRouter(prefix="/api/v1/rollouts", tags=["rollouts"])
_STATUS = {
    "not_found": 404, "unknown_model": 404, "overlap": 409, "bad_state": 409, "deprecated": 409,
}  # fmt: skip
_STEERED = {"pause": "paused", "resume": "resumed", "abort": "rolled_back"}  # transition kinds


class RolloutIn(BaseModel):
    model: str = Field(min_length=3, max_length=130, description="NAME:VERSION")
    selector: dict[str, str] = Field(default_factory=dict, description="labels nodes must have")
    waves: list[int] = Field(default=[10, 50, 100], description="cumulative percentages")
    gates: Gates = Field(default_factory=Gates)


class RolloutNodeOut(BaseModel):
    node_id: str
    wave: int
    status: str
    previous_version: str | None
    detail: str | None
    metrics: dict[str, float]
    updated_at: datetime


class RolloutOut(BaseModel):
    id: str
    model: str
    version: str
    selector: dict[str, str]
    waves: list[int]
    gates: dict[str, Any]
    state: str
    current_wave: int
    detail: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class RolloutDetail(RolloutOut):
    nodes: list[RolloutNodeOut]
    counts: dict[str, int]


def _detail(session: Session, ro: Rollout) -> RolloutDetail:
    nodes = [RolloutNodeOut.model_validate(n, from_attributes=True)
             for n in engine.nodes_of(session, ro.id)]  # fmt: skip
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.status] = counts.get(n.status, 0) + 1
    out = RolloutOut.model_validate(ro, from_attributes=True).model_dump()
    return RolloutDetail.model_validate({**out, "nodes": nodes, "counts": counts})


def _engine_error(exc: engine.RolloutError) -> ApiError:
    return ApiError(_STATUS.get(exc.reason, 400), exc.reason, exc.detail)


@router.post(
    "", status_code=201, response_model=RolloutDetail,
    responses=responses(400, 401, 403, 404, 409, 422),
)  # fmt: skip
async def start_rollout(who: OperateScope, rt: RuntimeDep, body: RolloutIn) -> RolloutDetail:
    name, sep, version = body.model.partition(":")
    if not sep or not name or not version:
        raise ApiError(400, "bad_model", "model is NAME:VERSION")

    def run() -> RolloutDetail:
        with rt.session() as session:
            ro = engine.start(
                session, name, version, body.selector, body.waves, body.gates, who.name
            )
            rt.publish([engine.transition(ro, "started")])  # committed: Dapr pub/sub
            return _detail(session, ro)

    try:
        out = await in_thread(run)
    except engine.RolloutError as exc:
        raise _engine_error(exc) from exc
    rt.changed({n.node_id for n in out.nodes if n.status != "pending"})
    return out


@router.get("", response_model=list[RolloutOut], responses=responses(401, 403, 422))
async def list_rollouts(_: ReadScope, session: SessionDep, limit: int = 50) -> Any:
    query = select(Rollout).order_by(col(Rollout.created_at).desc()).limit(max(1, min(limit, 500)))
    rows = await in_thread(lambda: session.exec(query).all())
    return [RolloutOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/{rollout_id}", response_model=RolloutDetail, responses=responses(401, 403, 404))
async def get_rollout(_: ReadScope, session: SessionDep, rollout_id: str) -> RolloutDetail:
    def run() -> RolloutDetail | None:
        ro = session.get(Rollout, rollout_id)
        return _detail(session, ro) if ro is not None else None

    out = await in_thread(run)
    if out is None:
        raise NotFound("not_found", f"no rollout {rollout_id!r}")
    return out


@router.post(
    "/{rollout_id}/{action}", response_model=RolloutDetail,
    responses=responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def steer_rollout(
    _: OperateScope,
    rt: RuntimeDep,
    rollout_id: str,
    action: Literal["pause", "resume", "abort"],
) -> RolloutDetail:
    def run() -> tuple[RolloutDetail, set[str]]:
        with rt.session() as session:
            ro, changed = engine.steer(session, rollout_id, action)
            rt.publish([engine.transition(ro, _STEERED[action], ro.detail)])
            return _detail(session, ro), changed

    try:
        out, changed = await in_thread(run)
    except engine.RolloutError as exc:
        raise _engine_error(exc) from exc
    rt.changed(changed)
    return out
