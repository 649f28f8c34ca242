"""Dependencies, as ``Annotated`` aliases the routes put in their signatures.

``SessionDep`` is a database session for the request. ``ReadScope``, ``OperateScope``,
``AdminScope`` and ``NodeScope`` authenticate the bearer token and check its scope; each is a
``ScopeGuard`` instance, which is how the auth test finds the scope every route asks for (a
route with no guard that is not in ``PUBLIC_PATHS`` fails that test).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from edgecloud.cloud.api.errors import ApiError
from edgecloud.cloud.auth import Principal, Scope, TokenVerifier
from edgecloud.cloud.settings import CloudSettings

# Routes that answer without a token (everything else needs one; see tests/unit/cloud).
PUBLIC_PATHS = frozenset(
    {"/healthz", "/", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)


@dataclass
class AppState:
    settings: CloudSettings
    engine: Engine
    verifier: TokenVerifier
    registry: CollectorRegistry
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.edgecloud
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(request: Request) -> Iterator[Session]:
    with Session(get_state(request).engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="an API token: `edgecloud token create`")


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})


class ScopeGuard:
    """Authenticates the request's bearer token and requires ``scope`` (or a higher one)."""

    def __init__(self, scope: Scope) -> None:
        self.scope: Scope = scope

    def __repr__(self) -> str:
        return f"ScopeGuard({self.scope!r})"

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        if credentials is None:
            raise _unauthorized("missing bearer token (Authorization: Bearer <token>)")
        verifier = get_state(request).verifier
        principal = verifier.cached(credentials.credentials)
        if principal is None:
            principal = await run_in_threadpool(verifier.verify, credentials.credentials)
        if principal is None:
            raise _unauthorized("invalid or revoked token")
        if not principal.allows(self.scope):
            raise ApiError(
                403,
                "forbidden",
                f"this route needs a {self.scope!r} token; the token has scope {principal.scope!r}",
            )
        return principal


ReadScope = Annotated[Principal, Depends(ScopeGuard("read"))]
OperateScope = Annotated[Principal, Depends(ScopeGuard("operate"))]
AdminScope = Annotated[Principal, Depends(ScopeGuard("admin"))]
NodeScope = Annotated[Principal, Depends(ScopeGuard("node"))]
