"""``GET /healthz``: no token; 200 when the database answers, 503 when it does not."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from edgecloud.cloud.api.deps import StateDep, in_thread
from edgecloud.cloud.api.schemas import HealthOut

router = APIRouter(tags=["health"])
log = logging.getLogger("edgecloud.cloud.api")


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "the database does not answer"}},
)
async def healthz(state: StateDep) -> HealthOut | JSONResponse:
    try:
        await in_thread(_ping, state.engine)
    except SQLAlchemyError as exc:
        log.warning("health check: database unavailable: %s", exc.__class__.__name__)
        body = HealthOut(status="unavailable", database=exc.__class__.__name__)
        return JSONResponse(body.model_dump(), status_code=503)
    return HealthOut(status="ok", database="ok")
