"""The learning loop's routes (docs/learning.md).

- ``POST /api/v1/anomalies/{event_id}/feedback`` (``operate``): the operator's verdict on one
  stored reading, ``true_positive`` | ``false_positive`` | ``missed``, with a note; 404 for a
  reading the cloud does not hold.
- ``POST /api/v1/labels/ground-truth`` (``operate``): the simulator's ground truth.
- ``GET /api/v1/labels`` (``read``): label counts per source and verdict in a window.
- ``POST /api/v1/models/{name}/retrain`` (``operate``): the retraining job; 201 with the
  evaluation when the candidate is accepted and registered, 409 ``not_better`` with the
  figures when it is refused; 400 for a window that cannot train, 404 for an unknown model.
- ``GET /api/v1/evaluations[?model=]``, ``GET /api/v1/evaluations/{id}`` and ``.../svg``;
  ``GET /api/v1/evaluations/live?model=&since=-1h``: each version's live anomaly rate and
  operator feedback counts (the dashboard shows both beside the evaluations).

The job is not imported here: ``retrain_job`` names it (``module:function``), so the cloud
package does not depend on the trainers, and another trainer plugs in by that setting.
"""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from edgecloud.cloud import db
from edgecloud.cloud.api.deps import OperateScope, ReadScope, SessionDep, StateDep, in_thread
from edgecloud.cloud.api.errors import ApiError, BadRequest, NotFound, responses
from edgecloud.cloud.api.params import check_range, parse_time
from edgecloud.cloud.api.routes.models import RuntimeDep
from edgecloud.cloud.labels import service
from edgecloud.cloud.labels.port import JobContext, JobRefused, RetrainRequest, UnknownModel
from edgecloud.cloud.labels.tables import SOURCES, Evaluation, Label
from edgecloud.cloud.registry.service import Limits
from edgecloud.core.errors import ConfigError, ValidationFailed
from edgecloud.core.manifest import NAME_PATTERN

router = APIRouter(tags=["learning"])
ID = r"^[A-Za-z0-9._-]{1,64}$"


class FeedbackIn(BaseModel):
    verdict: Literal["true_positive", "false_positive", "missed"]
    note: str | None = Field(None, max_length=2000)


class LabelOut(BaseModel):
    event_id: uuid.UUID
    device_id: str
    seq: int
    source: str
    verdict: str
    anomalous: bool
    fault_kind: str | None
    note: str | None
    created_by: str | None


class TruthItem(BaseModel):
    device_id: str = Field(pattern=ID)
    seq: int = Field(ge=0, le=2**63 - 1)
    fault: Literal["none", "spike", "drift", "stuck", "bearing_wear"]


class TruthIn(BaseModel):
    items: list[TruthItem] = Field(max_length=200_000)


class RetrainIn(BaseModel):
    since: str = Field(max_length=64, description="RFC 3339, epoch seconds or relative (-1h)")
    until: str | None = Field(None, max_length=64, description="default: now")
    trainer: Literal["mahalanobis", "mahalanobis-ewma", "temporal"] | None = None
    ground_truth: bool = Field(False, description="train on the simulator's labels too")
    evaluate_with_ground_truth: bool = Field(False, description="score on them (tests, demo)")
    holdout: float = Field(0.3, ge=0.05, le=0.8, description="held-out share of the window")


@router.post(
    "/api/v1/anomalies/{event_id}/feedback", status_code=201, response_model=LabelOut,
    responses=responses(400, 401, 403, 404, 422),
)  # fmt: skip
async def feedback(
    who: OperateScope, session: SessionDep, event_id: uuid.UUID, body: FeedbackIn
) -> Any:
    try:
        row = await in_thread(
            service.record_feedback, session, event_id, body.verdict, body.note, who.name
        )
    except service.UnknownReading as exc:
        raise NotFound(exc.reason, exc.detail) from exc
    return LabelOut.model_validate(row, from_attributes=True)


@router.post(
    "/api/v1/labels/ground-truth", status_code=201, responses=responses(400, 401, 403, 422)
)
async def ground_truth(who: OperateScope, session: SessionDep, body: TruthIn) -> Any:
    items = [service.Truth(i.device_id, i.seq, i.fault) for i in body.items]
    n = await in_thread(service.record_ground_truth, session, items, who.name)
    return {"written": n}


def _counts(session: Session, since: Any, until: Any) -> dict[str, dict[str, int]]:
    lab = db.table_of(Label)
    q = sa.select(lab.c.source, lab.c.verdict, sa.func.count()).group_by(
        lab.c.source, lab.c.verdict
    )
    if since is not None:
        q = q.where(lab.c.created_at >= since)
    if until is not None:
        q = q.where(lab.c.created_at < until)
    out: dict[str, dict[str, int]] = {s: {} for s in SOURCES}
    for source, verdict, n in session.execute(q):
        out.setdefault(source, {})[verdict] = int(n)
    return out


@router.get("/api/v1/labels", responses=responses(400, 401, 403, 422))
async def label_counts(
    _: ReadScope,
    session: SessionDep,
    since: Annotated[str | None, Query(max_length=64)] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    start, end = parse_time(since, "since"), parse_time(until, "until")
    check_range(start, end)
    return {"by_source": await in_thread(_counts, session, start, end)}


def load_job(path: str) -> Any:
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"retrain_job {path!r} cannot be loaded: {exc}") from exc


@router.post(
    "/api/v1/models/{name}/retrain", status_code=201,
    responses=responses(400, 401, 403, 404, 409, 422),
)  # fmt: skip
async def retrain(
    who: OperateScope,
    state: StateDep,
    rt: RuntimeDep,
    name: Annotated[str, Path(pattern=NAME_PATTERN)],
    body: RetrainIn,
) -> Any:
    start, end = parse_time(body.since, "since"), parse_time(body.until, "until")
    if start is None:
        raise BadRequest("bad_since", "since is required")
    end = end or datetime.now(UTC)
    check_range(start, end)
    if start >= end:
        raise BadRequest("empty_window", "since must be before until")
    s = state.settings
    job = load_job(s.retrain_job)
    steps: list[str] = []
    ctx = JobContext(
        engine=rt.engine, store=rt.store,
        limits=Limits(rt.settings.registry_max_bundle_bytes, rt.settings.registry_max_files),
        signing_key=s.retrain_signing_key, min_gain=s.retrain_min_gain, metric=s.retrain_metric,
        progress=steps.append,
    )  # fmt: skip
    req = RetrainRequest(
        name=name, since=start, until=end, trainer=body.trainer, ground_truth=body.ground_truth,
        evaluate_with_ground_truth=body.evaluate_with_ground_truth, holdout=body.holdout,
        who=who.name,
    )  # fmt: skip
    try:
        outcome: dict[str, Any] = await in_thread(job, ctx, req)
    except UnknownModel as exc:
        raise NotFound(exc.reason, exc.detail) from exc
    except JobRefused as exc:
        raise ApiError(409, exc.reason, exc.detail) from exc
    except ValidationFailed as exc:  # the window: empty, one class, too few rows
        raise BadRequest(exc.reason, exc.detail) from exc
    outcome["steps"] = steps
    if not outcome["accepted"]:
        r = outcome["report"]
        detail = (
            f"{name}:{outcome['version']} is not better than {outcome['parent_version']} by "
            f"{r['min_gain']} on {r['metric']}: {r['candidate']['metrics'][r['metric']]} vs "
            f"{r['active']['metrics'][r['metric']]}; nothing registered"
        )
        return JSONResponse({"error": "not_better", "detail": detail, **outcome}, status_code=409)
    rt.changed()
    return outcome


class EvaluationOut(BaseModel):
    id: uuid.UUID
    model: str
    version: str
    parent_version: str | None
    accepted: bool
    report: dict[str, Any]
    created_by: str | None


@router.get(
    "/api/v1/evaluations", response_model=list[EvaluationOut],
    responses=responses(401, 403, 422),
)  # fmt: skip
async def list_evaluations(
    _: ReadScope,
    session: SessionDep,
    model: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    def run() -> list[Evaluation]:
        q = select(Evaluation).order_by(col(Evaluation.created_at).desc()).limit(limit)
        if model is not None:
            q = q.where(Evaluation.model == model)
        return list(session.exec(q))

    return [EvaluationOut.model_validate(r, from_attributes=True) for r in await in_thread(run)]


def _live(session: Session, model: str, since: datetime) -> list[dict[str, Any]]:
    r, lab = db.table_of(db.Reading), db.table_of(Label)
    rates = (
        sa.select(r.c.model_version, sa.func.count(), sa.func.count().filter(r.c.anomaly))
        .where(r.c.model == model, r.c.ts >= since)
        .group_by(r.c.model_version)
    )
    fb = (
        sa.select(r.c.model_version, lab.c.verdict, sa.func.count())
        .select_from(lab.join(r, r.c.event_id == lab.c.event_id))
        .where(lab.c.source == "operator", r.c.model == model, r.c.ts >= since)
        .group_by(r.c.model_version, lab.c.verdict)
    )
    out: dict[str, dict[str, Any]] = {}
    for version, n, anomalies in session.execute(rates):
        out[str(version)] = {"version": version, "readings": int(n), "anomalies": int(anomalies),
                             "anomaly_rate": round(int(anomalies) / max(int(n), 1), 4),
                             "feedback": {}}  # fmt: skip
    for version, verdict, n in session.execute(fb):
        entry = out.setdefault(str(version), {"version": version, "readings": 0, "anomalies": 0,
                                              "anomaly_rate": 0.0, "feedback": {}})  # fmt: skip
        entry["feedback"][verdict] = int(n)
    return sorted(out.values(), key=lambda e: str(e["version"]))


@router.get("/api/v1/evaluations/live", responses=responses(400, 401, 403, 422))
async def live_by_version(
    _: ReadScope,
    session: SessionDep,
    model: Annotated[str, Query(pattern=NAME_PATTERN)],
    since: Annotated[str, Query(max_length=64)] = "-1h",
) -> Any:
    """Each version's live anomaly rate and operator feedback counts since ``since``."""
    start = parse_time(since, "since") or datetime.now(UTC)
    return {"model": model, "since": start.isoformat(),
            "versions": await in_thread(_live, session, model, start)}  # fmt: skip


async def _evaluation(session: Session, eval_id: uuid.UUID) -> Evaluation:
    row = await in_thread(session.get, Evaluation, eval_id)
    if row is None:
        raise NotFound("unknown_evaluation", f"no evaluation {eval_id}")
    return row


@router.get(
    "/api/v1/evaluations/{eval_id}", response_model=EvaluationOut,
    responses=responses(401, 403, 404, 422),
)  # fmt: skip
async def get_evaluation(_: ReadScope, session: SessionDep, eval_id: uuid.UUID) -> Any:
    return EvaluationOut.model_validate(await _evaluation(session, eval_id), from_attributes=True)


@router.get(
    "/api/v1/evaluations/{eval_id}/svg", response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **responses(401, 403, 404, 422)},
)  # fmt: skip
async def get_evaluation_svg(_: ReadScope, session: SessionDep, eval_id: uuid.UUID) -> Response:
    row = await _evaluation(session, eval_id)
    return Response(row.svg, media_type="image/svg+xml")
