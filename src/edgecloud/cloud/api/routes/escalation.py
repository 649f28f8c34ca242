"""``GET /api/v1/escalation``: is escalation on, and if not why; budget and breaker state as
the worker last published it (``service_state`` key ``escalation``); escalations by status."""

from __future__ import annotations

from fastapi import APIRouter

from edgecloud.cloud.api import queries
from edgecloud.cloud.api.deps import ReadScope, SessionDep, StateDep
from edgecloud.cloud.api.errors import responses
from edgecloud.cloud.api.schemas import EscalationStatusOut

router = APIRouter(prefix="/api/v1/escalation", tags=["escalation"])


@router.get("", response_model=EscalationStatusOut, responses=responses(401, 403))
def escalation_status(_: ReadScope, session: SessionDep, state: StateDep) -> EscalationStatusOut:
    published = queries.service_state(session, "escalation")
    if published is not None and "enabled" in published:
        enabled = bool(published["enabled"])
        reason = published.get("reason") or published.get("status")
    else:
        enabled = state.settings.escalation_enabled
        reason = None if enabled else "no OPENAI_API_KEY configured"
    return EscalationStatusOut(
        enabled=enabled,
        reason=None if reason is None else str(reason),
        state=published,
        counts=queries.escalation_counts(session),
    )
