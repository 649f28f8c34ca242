"""Devices and their readings (``read`` scope), keyset-paginated."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from edgecloud.cloud.api import queries
from edgecloud.cloud.api.deps import ReadScope, SessionDep, in_thread
from edgecloud.cloud.api.errors import BadRequest, NotFound, responses
from edgecloud.cloud.api.params import (
    check_id,
    check_range,
    cursor_time,
    decode_cursor,
    encode_cursor,
    parse_time,
    valid_id,
)
from edgecloud.cloud.api.schemas import DeviceOut, DevicePage, ReadingOut, ReadingPage

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
_MAX_SEQ = 2**63 - 1

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the last page")]
TimeParam = Annotated[
    str | None, Query(max_length=64, description="RFC 3339, epoch seconds or relative (-15m)")
]


@router.get("", response_model=DevicePage, responses=responses(400, 401, 403, 422))
async def list_devices(
    _: ReadScope,
    session: SessionDep,
    node_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 500,
    cursor: Cursor = None,
) -> DevicePage:
    key = decode_cursor(cursor, ("device_id",))
    after = str(key["device_id"]) if key else None
    impossible = [v for v in (node_id, after) if v is not None and not valid_id(v)]
    if impossible:
        return DevicePage(items=[], next_cursor=None)  # no such node / device can exist
    rows = await in_thread(queries.devices_page, session, node_id, after, limit)
    items = [DeviceOut.model_validate(r, from_attributes=True) for r in rows]
    next_cursor = encode_cursor({"device_id": rows[-1].device_id}) if len(rows) == limit else None
    return DevicePage(items=items, next_cursor=next_cursor)


@router.get(
    "/{device_id}/readings",
    response_model=ReadingPage,
    responses=responses(400, 401, 403, 404, 422),
)
async def list_readings(
    _: ReadScope,
    session: SessionDep,
    device_id: str,
    since: TimeParam = None,
    until: TimeParam = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    order: Literal["desc", "asc"] = "desc",
) -> ReadingPage:
    """Readings of one device, newest first by default (``order=asc`` for oldest first)."""
    check_id(device_id, "device")
    start, end = parse_time(since, "since"), parse_time(until, "until")
    check_range(start, end)
    key = decode_cursor(cursor, ("ts", "seq", "order"))
    after = None
    if key is not None:
        seq = key["seq"]
        if not isinstance(seq, int) or not 0 <= seq <= _MAX_SEQ or key["order"] != order:
            raise BadRequest("bad_cursor", "cursor is not one this API returned for this order")
        after = (cursor_time(key, "ts"), seq)
    rows, known = await in_thread(
        queries.readings_or_unknown, session, device_id, start, end, after, limit, order == "desc"
    )
    if not known:
        raise NotFound("unknown_device", f"no device {device_id!r}")
    items = [ReadingOut.model_validate(r, from_attributes=True) for r in rows]
    next_cursor = None
    if len(rows) == limit:
        last = rows[-1]
        next_cursor = encode_cursor(
            {"ts": queries.aware(last.ts).isoformat(), "seq": last.seq, "order": order}
        )
    return ReadingPage(items=items, next_cursor=next_cursor)
