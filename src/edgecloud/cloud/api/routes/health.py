"""``GET /healthz``: no token; 200 when the database answers, 503 when it does not."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from edgecloud.cloud.api.deps import StateDep
from edgecloud.cloud.api.schemas import HealthOut

router = APIRouter(tags=["health"])
log = logging.getLogger("edgecloud.cloud.api")


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "the database does not answer"}},
)
def healthz(state: StateDep) -> HealthOut | JSONResponse:
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health check: database unavailable: %s", exc.__class__.__name__)
        body = HealthOut(status="unavailable", database=exc.__class__.__name__)
        return JSONResponse(body.model_dump(), status_code=503)
    return HealthOut(status="ok", database="ok")
