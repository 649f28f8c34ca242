"""Dependencies, as ``Annotated`` aliases the routes put in their signatures.

``SessionDep`` is a database session for the request. ``ReadScope``, ``OperateScope``,
``AdminScope`` and ``NodeScope`` authenticate the bearer token and check its scope; each is a
``ScopeGuard`` instance, which is how the auth test finds the scope every route asks for (a
route with no guard that is not in ``PUBLIC_PATHS`` fails that test).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from edgecloud.cloud.api.errors import ApiError
from edgecloud.cloud.api.pgpool import AsyncPgPool
from edgecloud.cloud.auth import Principal, Scope, TokenVerifier
from edgecloud.cloud.settings import CloudSettings

# Routes that answer without a token (everything else needs one; see tests/unit/cloud).
PUBLIC_PATHS = frozenset(
    {"/healthz", "/", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    | {"/dapr/rollout-tick"}  # no bearer token: daprd's dapr-api-token (routes/dapr.py)
)


@dataclass
class AppState:
    settings: CloudSettings
    engine: Engine
    verifier: TokenVerifier
    registry: CollectorRegistry
    pg: AsyncPgPool | None = None  # Postgres only: the async pool of the hot read path
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # token -> the one verification in flight for it (see ``verify``)
    verifying: dict[str, asyncio.Task[Principal | None]] = field(default_factory=dict)

    async def verify(self, token: str) -> Principal | None:
        """``verifier.verify`` in a worker thread, at most once at a time per token.

        When a token's cache entry expires (every 5 s), every request that arrives before the
        first lookup answers misses too. Each of them used to do its own lookup, each a thread
        hop and a query, some on a new pooled connection: measured under the REST benchmark's
        load, 1 to 6 lookups every 5 s of 2 to 10 ms CPU each (a new connection's SCRAM
        authentication the dearest), holding the GIL against the event loop, 10 to 70 ms wall.
        Now they all await one lookup, a task of its own (a request that goes away does not
        cancel it for the others)."""
        task = self.verifying.get(token)
        if task is None:
            task = asyncio.create_task(run_in_threadpool(self.verifier.verify, token))
            self.verifying[token] = task
            task.add_done_callback(lambda t: self._verified(token, t))
        return await asyncio.shield(task)

    def _verified(self, token: str, task: asyncio.Task[Principal | None]) -> None:
        self.verifying.pop(token, None)
        if not task.cancelled():
            task.exception()  # retrieved here too: no warning when every waiter went away


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.edgecloud
    return state


async def get_state(request: Request) -> AppState:
    return _state(request)


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for the request. Creating it does no I/O, and closing it does none either:
    the API's engine is in autocommit mode, so returning the connection to the pool sends no
    ROLLBACK. The queries themselves run in a worker thread (``in_thread``)."""
    session = Session(_state(request).engine)
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]

P = ParamSpec("P")
T = TypeVar("T")


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking database work off the event loop: ONE thread hop per request.

    The routes are ``async def`` and put all their queries in one call of this; sync routes
    and sync dependencies would cost a hop each (and another for the response validation),
    which at hundreds of requests per second on two cores is most of the time spent."""
    return await run_in_threadpool(fn, *args, **kwargs)


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
        state = _state(request)
        principal = state.verifier.cached(credentials.credentials)
        if principal is None:
            principal = await state.verify(credentials.credentials)
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
