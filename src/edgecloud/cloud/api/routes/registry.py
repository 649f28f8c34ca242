"""The device registry (issue 16): add, list, show, revoke (``operate``); a node reads the
credentials of its own devices (``node``, its own node id only).

``POST /api/v1/devices/registry`` takes one device or thousands (``edgecloud device add
--from FILE.csv`` sends chunks), all or nothing; a password device's password is in the answer
once and never again. ``GET /api/v1/devices`` (devices with readings, ``read``) is another
route and stays as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from edgecloud.cloud.api.deps import NodeScope, OperateScope, SessionDep, in_thread
from edgecloud.cloud.api.errors import ApiError, NotFound, responses
from edgecloud.cloud.api.params import check_id, valid_id
from edgecloud.cloud.api.routes.desired import own_node
from edgecloud.cloud.api.routes.models import RuntimeDep
from edgecloud.cloud.devices import service
from edgecloud.cloud.devices.tables import RegisteredDevice

router = APIRouter(prefix="/api/v1/devices/registry", tags=["device registry"])
node_router = APIRouter(prefix="/api/v1/nodes", tags=["device registry"])


class DeviceIn(BaseModel):
    device_id: str = Field(max_length=256, description="1-64 chars of [A-Za-z0-9._-]")
    node_id: str = Field(max_length=256, description="the node whose broker admits it")
    labels: dict[str, str] = Field(default_factory=dict)
    cert_pem: str | None = Field(
        None, max_length=16384, description="its certificate (CN = device id); none: a password"
    )


class DevicesIn(BaseModel):
    devices: list[DeviceIn] = Field(min_length=1, max_length=service.MAX_BULK)


class RegisteredOut(BaseModel):
    device_id: str
    node_id: str
    labels: dict[str, Any]
    auth: str
    cert_sha256: str | None
    cert_serial: str | None
    cert_not_after: datetime | None
    created_by: str | None
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


class AddedOut(RegisteredOut):
    password: str | None = Field(None, description="shown once: the device's MQTT password")


class AddedPage(BaseModel):
    items: list[AddedOut]


class RegistryPage(BaseModel):
    items: list[RegisteredOut]
    next_cursor: str | None


class AuditOut(BaseModel):
    action: str
    actor: str
    node_id: str | None
    detail: dict[str, Any]
    at: datetime


class RegisteredDetail(RegisteredOut):
    audit: list[AuditOut]


def _out(row: RegisteredDevice) -> RegisteredOut:
    return RegisteredOut.model_validate(row, from_attributes=True)


@router.post(
    "", status_code=201, response_model=AddedPage, responses=responses(400, 401, 403, 409, 422)
)
async def add_devices(who: OperateScope, rt: RuntimeDep, body: DevicesIn) -> AddedPage:
    new = [service.NewDevice(d.device_id, d.node_id, d.labels, d.cert_pem) for d in body.devices]

    def run() -> list[AddedOut]:
        with rt.session() as session:
            added = service.add_many(session, new, who.name)
            return [AddedOut(**_out(a.row).model_dump(), password=a.password) for a in added]

    try:
        items = await in_thread(run)
    except service.Duplicate as exc:
        raise ApiError(409, exc.reason, exc.detail) from exc
    rt.changed({d.node_id for d in new})
    return AddedPage(items=items)


@router.get("", response_model=RegistryPage, responses=responses(400, 401, 403, 422))
async def list_registered(
    _: OperateScope,
    session: SessionDep,
    node_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    cursor: Annotated[str | None, Query(max_length=64, description="last device_id seen")] = None,
) -> RegistryPage:
    if any(v is not None and not valid_id(v) for v in (node_id, cursor)):
        raise ApiError(400, "bad_id", "node_id and cursor are 1-64 chars of [A-Za-z0-9._-]")
    rows = await in_thread(service.page, session, node_id, cursor, limit)
    nxt = rows[-1].device_id if len(rows) == limit else None
    return RegistryPage(items=[_out(r) for r in rows], next_cursor=nxt)


@router.get(
    "/{device_id}", response_model=RegisteredDetail, responses=responses(400, 401, 403, 404)
)
async def get_registered(_: OperateScope, session: SessionDep, device_id: str) -> RegisteredDetail:
    check_id(device_id, "device")

    def run() -> RegisteredDetail | None:
        row = session.get(RegisteredDevice, device_id)
        if row is None:
            return None
        audit = [
            AuditOut.model_validate(a, from_attributes=True)
            for a in service.audit(session, device_id)
        ]
        return RegisteredDetail(**_out(row).model_dump(), audit=audit)

    out = await in_thread(run)
    if out is None:
        raise NotFound("unknown_device", f"no registered device {device_id!r}")
    return out


@router.delete(
    "/{device_id}", response_model=RegisteredOut, responses=responses(400, 401, 403, 404)
)
async def revoke_device(who: OperateScope, rt: RuntimeDep, device_id: str) -> RegisteredOut:
    """Revoke: the node's agent disconnects the device and its broker refuses it."""
    check_id(device_id, "device")

    def run() -> RegisteredOut | None:
        with rt.session() as session:
            row = service.revoke(session, device_id, who.name)
            return _out(row) if row is not None else None

    out = await in_thread(run)
    if out is None:
        raise NotFound("unknown_device", f"no registered device {device_id!r}")
    rt.changed({out.node_id})
    return out


@node_router.get("/{node_id}/devices", responses=responses(401, 403, 422))
async def node_devices(principal: NodeScope, rt: RuntimeDep, node_id: str) -> dict[str, Any]:
    """The node's own devices: hashes and certificate fingerprints, never a password."""
    own_node(principal, node_id)

    def run() -> dict[str, Any]:
        with rt.session() as session:
            return service.node_credentials(session, node_id)

    return await in_thread(run)
