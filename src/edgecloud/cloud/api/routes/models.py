"""Model registry routes: upload (``operate``), list and fetch (``read``), the artifact with
HTTP Range and ETag = sha256 (``read`` or a ``node`` token), operator keys (``admin`` to add).

An upload is a multipart form with one file field ``bundle``: a tar, tar.gz or zip of the
bundle folder (manifest.yaml, the ONNX file, signature.json). It is checked in full before it
is stored (``cloud/registry/validate.py``); each refusal is a 400 with a stable ``error`` code.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Query, Request, Response, Security, UploadFile
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from edgecloud.cloud.api.deps import (
    AdminScope,
    OperateScope,
    ReadScope,
    ScopeGuard,
    SessionDep,
    in_thread,
)
from edgecloud.cloud.api.errors import ApiError, NotFound, responses
from edgecloud.cloud.auth import Principal
from edgecloud.cloud.registry import lifecycle, service
from edgecloud.cloud.registry.tables import ModelAudit, ModelVersion, OperatorKey
from edgecloud.cloud.rollouts.runtime import ModelsRuntime
from edgecloud.core.errors import ValidationFailed
from edgecloud.core.manifest import NAME_PATTERN, VERSION_PATTERN

router = APIRouter(prefix="/api/v1/models", tags=["models"])
keys_router = APIRouter(prefix="/api/v1/operator-keys", tags=["models"])


def get_runtime(request: Request) -> ModelsRuntime:
    rt: ModelsRuntime = request.app.state.models
    return rt


RuntimeDep = Annotated[ModelsRuntime, Depends(get_runtime)]


class ModelOut(BaseModel):
    name: str
    version: str
    runtime: str
    description: str | None
    file_sha256: str | None
    artifact_sha256: str
    artifact_size: int
    key_id: str
    io: dict[str, Any]
    uploaded_by: str | None
    created_at: datetime
    deprecated_at: datetime | None = None
    deprecated_by: str | None = None
    deprecation_reason: str | None = None


class ModelDetail(ModelOut):
    manifest: dict[str, Any]
    signature: dict[str, Any]


class KeyIn(BaseModel):
    public_key: str = Field(min_length=40, max_length=4096, description="base64 raw or PEM")
    name: str = Field("", max_length=128)


class RetireIn(BaseModel):
    reason: str | None = Field(None, max_length=1000, description="why, for the audit")


class AuditOut(BaseModel):
    name: str
    version: str
    action: str
    actor: str
    token_id: str | None
    reason: str | None
    artifact_sha256: str | None
    at: datetime


def _actor(who: Principal) -> lifecycle.Actor:
    return lifecycle.Actor(who.name[:128], str(who.token_id))


class KeyOut(BaseModel):
    key_id: str
    public_key: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


def _out(row: ModelVersion, cls: type[ModelOut] = ModelOut) -> Any:
    return cls.model_validate(row, from_attributes=True)


async def _spool(upload: UploadFile, folder: FsPath, limit: int) -> FsPath:
    fd, name = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    size = 0
    with os.fdopen(fd, "wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                out.close()
                os.unlink(name)
                raise ApiError(413, "too_large", f"bundle archive is over {limit} bytes")
            out.write(chunk)
    return FsPath(name)


def _register(rt: ModelsRuntime, path: FsPath, who: str) -> tuple[ModelVersion, bool]:
    limits = service.Limits(rt.settings.registry_max_bundle_bytes, rt.settings.registry_max_files)
    try:
        with rt.session() as session:
            return service.register(session, rt.store, path, limits, who)
    except IntegrityError as exc:  # the same name:version uploaded concurrently
        raise ApiError(409, "version_exists", "that name and version were just registered") from exc
    finally:
        path.unlink(missing_ok=True)


@router.post(
    "", status_code=201, response_model=ModelDetail,
    responses=responses(400, 401, 403, 409, 413, 422),
)  # fmt: skip
async def upload_model(
    who: OperateScope,
    rt: RuntimeDep,
    response: Response,
    bundle: Annotated[UploadFile, File(description="tar, tar.gz or zip of the bundle folder")],
) -> Any:
    path = await _spool(bundle, rt.store.root, rt.settings.registry_max_bundle_bytes)
    try:
        row, created = await in_thread(_register, rt, path, who.name)
    except service.Conflict as exc:
        raise ApiError(409, exc.reason, exc.detail) from exc
    except ValidationFailed as exc:
        status = 413 if exc.reason == "too_large" else 400
        detail = exc.detail.replace(str(rt.store.root), "<registry>")  # no server path out
        raise ApiError(status, exc.reason, detail) from exc
    if not created:
        response.status_code = 200
    return _out(row, ModelDetail)


@router.get("", response_model=list[ModelOut], responses=responses(401, 403, 422))
async def list_models(
    _: ReadScope,
    session: SessionDep,
    name: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
) -> Any:
    rows = await in_thread(service.list_models, session, name)
    return [_out(r) for r in rows]


@router.get("/audit", response_model=list[AuditOut], responses=responses(401, 403, 422))
async def list_audit(
    _: ReadScope,
    session: SessionDep,
    name: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Who deprecated or deleted which version, newest first."""
    rows: list[ModelAudit] = list(await in_thread(lifecycle.audit, session, name, limit))
    return [AuditOut.model_validate(r, from_attributes=True) for r in rows]


async def _find(session: SessionDep, name: str, version: str) -> ModelVersion:
    row = await in_thread(service.get_model, session, name, version)
    if row is None:
        raise NotFound("unknown_model", f"no model {name}:{version}")
    return row


ModelName = Annotated[str, Path(pattern=NAME_PATTERN)]
ModelVersionText = Annotated[str, Path(pattern=VERSION_PATTERN)]


@router.get(
    "/{name}/{version}", response_model=ModelDetail, responses=responses(401, 403, 404, 422)
)
async def get_model(
    _: ReadScope, session: SessionDep, name: ModelName, version: ModelVersionText
) -> Any:
    return _out(await _find(session, name, version), ModelDetail)


@router.post(
    "/{name}/{version}/deprecate",
    response_model=ModelDetail,
    responses=responses(400, 401, 403, 404, 422),
)
async def deprecate_model(
    who: OperateScope,
    rt: RuntimeDep,
    name: ModelName,
    version: ModelVersionText,
    body: RetireIn | None = None,
) -> Any:
    """No new rollout may pick this version; nodes running it keep it. Idempotent."""
    reason = body.reason if body else None

    def run() -> ModelVersion | None:
        with rt.session() as session:
            return lifecycle.deprecate(session, name, version, _actor(who), reason)

    row = await in_thread(run)
    if row is None:
        raise NotFound("unknown_model", f"no model {name}:{version}")
    return _out(row, ModelDetail)


@router.delete(
    "/{name}/{version}", status_code=204, responses=responses(400, 401, 403, 404, 409, 422)
)
async def delete_model(
    who: OperateScope,
    rt: RuntimeDep,
    name: ModelName,
    version: ModelVersionText,
    reason: Annotated[str | None, Query(max_length=1000, description="for the audit")] = None,
) -> Response:
    """Delete the version and its artifact; 409 ``in_use`` while a node or rollout uses it."""

    def run() -> bool:
        with rt.session() as session:
            return lifecycle.delete(session, rt.store, name, version, _actor(who), reason)

    try:
        deleted = await in_thread(run)
    except lifecycle.InUse as exc:
        raise ApiError(409, exc.reason, exc.detail) from exc
    if not deleted:
        raise NotFound("unknown_model", f"no model {name}:{version}")
    return Response(status_code=204)


_bearer = HTTPBearer(auto_error=False, description="an API token: `edgecloud token create`")


class ReadOrNode(ScopeGuard):
    """A ``read`` (or higher) token, or any node's token: nodes download what they are told."""

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        try:
            return await ScopeGuard("node")(request, credentials)
        except ApiError as exc:
            if exc.status != 403:
                raise
        return await ScopeGuard("read")(request, credentials)


@router.get(
    "/{name}/{version}/artifact",
    response_class=FileResponse,
    responses={**responses(401, 403, 404, 416, 422), 206: {"description": "a byte range"}},
)
async def get_artifact(
    _: Annotated[Principal, Depends(ReadOrNode("read"))],
    session: SessionDep,
    rt: RuntimeDep,
    request: Request,
    name: ModelName,
    version: ModelVersionText,
) -> Response:
    row = await _find(session, name, version)
    etag = f'"{row.artifact_sha256}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    path = rt.store.path(row.artifact_sha256)
    if not path.is_file():
        raise ApiError(503, "artifact_missing", f"the stored artifact of {name}:{version} is gone")
    return FileResponse(
        path,
        media_type="application/x-tar",
        filename=f"{name}-{version}.tar",
        headers={"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"},
    )


@keys_router.post("", status_code=201, response_model=KeyOut, responses=responses(400, 401, 403))
async def add_key(_: AdminScope, rt: RuntimeDep, body: KeyIn) -> Any:
    def run() -> OperatorKey:
        with rt.session() as session:
            return service.add_key(session, body.public_key, body.name)

    row = await in_thread(run)
    return KeyOut.model_validate(row, from_attributes=True)


@keys_router.get("", response_model=list[KeyOut], responses=responses(401, 403))
async def list_keys(_: ReadScope, session: SessionDep) -> Any:
    rows = await in_thread(service.list_keys, session)
    return [KeyOut.model_validate(r, from_attributes=True) for r in rows]
