"""``AggregatesFastPath``: answers the plain case of ``GET /api/v1/aggregates`` (the route that
dashboards poll, and the REST benchmark's) without FastAPI's routing and dependency solving.

Measured in-process on this machine, FastAPI spent more CPU per request on routing and on
solving the route's dependencies (the ``ScopeGuard``, its bearer scheme, the state, five query
parameters) than the route spent on its query and its answer. This middleware (pure ASGI, the
innermost) takes a request only when everything is ordinary: ``GET`` on exactly that path, a
bearer token that the verifier has in its cache (``TokenVerifier.cached``, no I/O) and whose
scope allows ``read``, each known parameter at most once, non-empty and within its route's
``max_length``. It then answers with the route's own ``aggregates.body()``. Anything else (no
token, an unknown or expired one, a parameter FastAPI would reject, an ``ApiError`` or a
database error from ``body()``) goes on to the FastAPI route, unchanged, which does the full
check and answers the error: so authentication, status codes and error bodies stay those of
the route, and the route keeps its ``ScopeGuard`` and its OpenAPI entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from edgecloud.cloud.api.deps import AppState
from edgecloud.cloud.api.routes import aggregates

PATH = "/api/v1/aggregates"
# the route's query parameters and their max_length
_PARAMS = {"device_id": 64, "metric": 64, "bucket": 16, "since": 64, "until": 64}


@dataclass(frozen=True)
class _Template:
    """What ``RequestMetrics`` reads of ``scope["route"]``: the route template."""

    path: str


_ROUTE = _Template(PATH)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None


def _params(query_string: bytes) -> dict[str, str] | None:
    """The route's parameters, or None where FastAPI should judge them."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        limit = _PARAMS.get(key)
        if limit is None:
            continue  # FastAPI ignores unknown parameters too
        if key in out or not value or len(value) > limit:
            return None
        out[key] = value
    return out if "device_id" in out else None


class AggregatesFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            text = await self._answer(scope)
            if text is not None:
                body = text.encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope) -> str | None:
        app = scope.get("app")
        state: AppState | None = getattr(getattr(app, "state", None), "edgecloud", None)
        token = _bearer(scope)
        if state is None or token is None:
            return None
        principal = state.verifier.cached(token)
        if principal is None or not principal.allows("read"):
            return None
        params = _params(scope.get("query_string", b""))
        if params is None:
            return None
        try:
            text = await aggregates.body(
                state,
                params["device_id"],
                params.get("metric"),
                params.get("bucket", "1m"),
                params.get("since"),
                params.get("until"),
            )
        except Exception:  # the route answers it (ApiError: 4xx; a database error: 503)
            return None
        scope["route"] = _ROUTE  # RequestMetrics labels by the route template
        return text
