"""``GET /api/v1/anomalies``: anomalous readings, newest first, each with its escalation
(status, severity, explanation, suggested action) where there is one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from edgecloud.cloud.api import queries
from edgecloud.cloud.api.deps import ReadScope, SessionDep, in_thread
from edgecloud.cloud.api.errors import BadRequest, responses
from edgecloud.cloud.api.params import (
    check_range,
    cursor_time,
    decode_cursor,
    encode_cursor,
    parse_time,
    valid_id,
)
from edgecloud.cloud.api.schemas import AnomalyOut, AnomalyPage, EscalationOut

router = APIRouter(prefix="/api/v1/anomalies", tags=["anomalies"])
TimeParam = Annotated[
    str | None, Query(max_length=64, description="RFC 3339, epoch seconds or relative (-15m)")
]


@router.get("", response_model=AnomalyPage, responses=responses(400, 401, 403, 422))
async def list_anomalies(
    _: ReadScope,
    session: SessionDep,
    since: TimeParam = None,
    until: TimeParam = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AnomalyPage:
    start, end = parse_time(since, "since"), parse_time(until, "until")
    check_range(start, end)
    key = decode_cursor(cursor, ("ts", "event_id"))
    after = None
    if key is not None:
        try:
            after = (cursor_time(key, "ts"), uuid.UUID(str(key["event_id"])))
        except ValueError as exc:
            raise BadRequest("bad_cursor", "cursor is not one this API returned") from exc
    if device_id is not None and not valid_id(device_id):
        return AnomalyPage(items=[], next_cursor=None)  # no such device can exist
    rows = await in_thread(queries.anomalies_page, session, device_id, start, end, after, limit)
    items = []
    for reading, esc in rows:
        item = AnomalyOut.model_validate(reading, from_attributes=True)
        if esc is not None:
            item.escalation = EscalationOut.model_validate(esc, from_attributes=True)
        items.append(item)
    next_cursor = None
    if len(rows) == limit:
        last = rows[-1][0]
        next_cursor = encode_cursor(
            {"ts": queries.aware(last.ts).isoformat(), "event_id": str(last.event_id)}
        )
    return AnomalyPage(items=items, next_cursor=next_cursor)
