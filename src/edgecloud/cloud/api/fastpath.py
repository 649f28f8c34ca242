"""``AggregatesFastPath``: answers the plain case of ``GET /api/v1/aggregates`` (the route that
dashboards poll, and the REST benchmark's) without FastAPI's routing and dependency solving.

Measured in-process on this machine, FastAPI spent more CPU per request on routing and on
solving the route's dependencies (the ``ScopeGuard``, its bearer scheme, the state, five query
parameters) than the route spent on its query and its answer, and the middleware stack
(Starlette's error middleware, FastAPI's own two, ours) and its wrapped ``send`` about a fifth
of what was left. ``EdgecloudApp.__call__`` (``app.py``) hands the request to ``serve`` before
all of that; it takes a request only when everything is ordinary: ``GET`` on exactly that path,
no request body declared (``BodyLimit`` judges those), a bearer token that the verifier has in
its cache (``TokenVerifier.cached``, no I/O) and whose scope allows ``read``, each known
parameter at most once, non-empty and within its route's ``max_length``. It then answers with
the route's own ``aggregates.body()`` and counts the request in the same Prometheus metrics as
``RequestMetrics`` (route template, method, 200, latency). Anything else (no token, an unknown
or expired one, a parameter FastAPI would reject, an ``ApiError`` or a database error from
``body()``) goes on to the middleware stack and the FastAPI route, unchanged, which does the
full check and answers the error: so authentication, status codes and error bodies stay those
of the route, and the route keeps its ``ScopeGuard`` and its OpenAPI entry.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

from starlette.types import Scope, Send

from edgecloud.cloud.api.deps import AppState
from edgecloud.cloud.api.middleware import ApiMetrics
from edgecloud.cloud.api.routes import aggregates

PATH = "/api/v1/aggregates"
# the route's query parameters and their max_length
_PARAMS = {"device_id": 64, "metric": 64, "bucket": 16, "since": 64, "until": 64}

_BODY_HEADERS = (b"content-length", b"transfer-encoding")


def _bearer(scope: Scope) -> str | None:
    """The bearer token; None without one, or when a request body is declared."""
    token = None
    for name, value in scope["headers"]:
        if name == b"authorization" and token is None:  # the first one, as Starlette reads it
            scheme, _, text = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not text:
                return None
            token = text
        elif name in _BODY_HEADERS:
            return None
    return token


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
    def __init__(self, metrics: ApiMetrics) -> None:
        self.metrics = metrics

    @staticmethod
    def wants(scope: Scope) -> bool:
        return bool(scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET")

    async def serve(self, state: AppState | None, scope: Scope, send: Send) -> bool:
        """Answer the request if it is the plain case; False (nothing sent) otherwise."""
        start = time.perf_counter()
        text = await self._answer(state, scope)
        if text is None:
            return False
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
        self.metrics.observe(PATH, "GET", 200, time.perf_counter() - start)
        return True

    async def _answer(self, state: AppState | None, scope: Scope) -> str | None:
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
            return await aggregates.body(
                state,
                params["device_id"],
                params.get("metric"),
                params.get("bucket", "1m"),
                params.get("since"),
                params.get("until"),
            )
        except Exception:  # the route answers it (ApiError: 4xx; a database error: 503)
            return None
