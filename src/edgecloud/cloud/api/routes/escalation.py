"""``GET /api/v1/escalation``: is escalation on, and if not why; the budget and breaker state
as the worker last published it (``service_state`` row ``escalation``); escalations by status.

``status`` is the worker's: ``enabled``, ``disabled`` (no OPENAI_API_KEY), ``circuit_open``,
``budget_exhausted`` or ``unknown`` (no worker has reported yet; ``enabled`` then says whether
this API process has a key configured).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlmodel import Session

from edgecloud.cloud.api import queries
from edgecloud.cloud.api.deps import ReadScope, SessionDep, StateDep, in_thread
from edgecloud.cloud.api.errors import responses
from edgecloud.cloud.api.schemas import EscalationStatusOut
from edgecloud.cloud.escalation.state import escalation_status

router = APIRouter(prefix="/api/v1/escalation", tags=["escalation"])


def _load(session: Session) -> tuple[dict[str, Any], dict[str, int]]:
    return escalation_status(session), queries.escalation_counts(session)


@router.get("", response_model=EscalationStatusOut, responses=responses(401, 403))
async def get_escalation_status(
    _: ReadScope, session: SessionDep, state: StateDep
) -> EscalationStatusOut:
    published, counts = await in_thread(_load, session)
    status = str(published.get("state", "unknown"))
    enabled = state.settings.escalation_enabled if status == "unknown" else status != "disabled"
    reason = published.get("detail")
    if status == "budget_exhausted":
        reason = reason or f"token budget spent; resets at {published.get('resets_at')}"
    elif status == "circuit_open":
        reason = reason or "the LLM endpoint failed repeatedly; requests are paused"
    return EscalationStatusOut(
        enabled=enabled,
        status=status,
        reason=None if reason is None else str(reason),
        state=published,
        counts=counts,
    )
