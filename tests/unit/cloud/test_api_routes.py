"""The route table: every route asks for a token (a ``ScopeGuard``) unless it is one of the
few public ones, so a route added without auth fails here. Also errors and 413 on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlmodel import Session

from edgecloud.cloud import auth
from edgecloud.cloud.api import create_app
from edgecloud.cloud.api.deps import PUBLIC_PATHS, ScopeGuard
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.settings import CloudSettings


def _guards(route: APIRoute) -> list[ScopeGuard]:
    found, stack = [], [route.dependant]
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, ScopeGuard):
            found.append(dep.call)
        stack.extend(dep.dependencies)
    return found


def test_every_route_but_the_public_ones_has_a_scope_guard(tmp_path: Path) -> None:
    app = create_app(CloudSettings(database_url=f"sqlite:///{tmp_path / 'c.db'}"))
    seen = 0
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute):
            continue
        seen += 1
        guards = _guards(route)
        if ctx.path in PUBLIC_PATHS:
            assert not guards, f"{ctx.path} is public but asks for a token"
        else:
            assert len(guards) == 1, f"{sorted(ctx.methods or ())} {ctx.path}: no ScopeGuard"
            assert guards[0].scope in auth.SCOPES
    assert seen >= 10


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    app = create_app(CloudSettings(database_url=url, max_body_bytes=2048))
    with TestClient(app) as c:
        engine = make_engine(url)
        with Session(engine) as session:
            token, _ = auth.create_token(session, "admin")
        engine.dispose()
        yield c, {"Authorization": f"Bearer {token}"}


def test_sqlite_quick_run_and_json_errors(client: tuple[TestClient, dict[str, Any]]) -> None:
    c, admin = client
    assert c.get("/healthz").json()["status"] == "ok"
    assert c.get("/api/v1/devices", headers=admin).json() == {"items": [], "next_cursor": None}
    res = c.get("/api/v1/nope", headers=admin)
    assert res.status_code == 404 and res.json()["error"] == "not_found"
    res = c.get("/api/v1/aggregates", params={"device_id": "d", "bucket": "2s"}, headers=admin)
    assert res.status_code == 400 and res.json() == {
        "error": "bad_bucket",
        "detail": res.json()["detail"],
    }
    res = c.post(
        "/api/v1/tokens",
        content=b"{not json",
        headers={**admin, "content-type": "application/json"},
    )
    assert res.status_code == 422 and res.json()["error"] == "invalid_request"


def test_413_before_any_work(client: tuple[TestClient, dict[str, Any]]) -> None:
    c, admin = client
    res = c.post("/api/v1/tokens", content=b"x" * 4096, headers=admin)
    assert res.status_code == 413
    assert res.json() == {
        "error": "payload_too_large",
        "detail": "request body is larger than 2048 bytes",
    }
    # no token at all: still 413 (the size is checked first, nothing is parsed)
    assert c.post("/api/v1/tokens", content=b"x" * 4096).status_code == 413
