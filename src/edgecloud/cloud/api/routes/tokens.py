"""API tokens (``admin`` scope): create (the token is in the answer, once), list, revoke."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlmodel import col, select

from edgecloud.cloud import auth
from edgecloud.cloud.api.deps import AdminScope, SessionDep, StateDep, in_thread
from edgecloud.cloud.api.errors import NotFound, responses
from edgecloud.cloud.api.schemas import TokenCreate, TokenCreated, TokenOut
from edgecloud.cloud.db import ApiToken

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.post(
    "", status_code=201, response_model=TokenCreated, responses=responses(400, 401, 403, 413, 422)
)
async def create_token(_: AdminScope, session: SessionDep, body: TokenCreate) -> TokenCreated:
    token, row = await in_thread(auth.create_token, session, body.scope, body.name, body.node_id)
    return TokenCreated.model_validate({**row.model_dump(), "token": token})


@router.get("", response_model=list[TokenOut], responses=responses(401, 403))
async def list_tokens(_: AdminScope, session: SessionDep) -> list[TokenOut]:
    query = select(ApiToken).order_by(col(ApiToken.created_at))
    rows = await in_thread(lambda: session.exec(query).all())
    return [TokenOut.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/{token_id}", status_code=204, responses=responses(401, 403, 404, 422))
async def revoke_token(
    _: AdminScope, session: SessionDep, state: StateDep, token_id: uuid.UUID
) -> Response:
    if not await in_thread(auth.revoke_token, session, token_id):
        raise NotFound("unknown_token", f"no active token {token_id}")
    state.verifier.forget()
    return Response(status_code=204)
