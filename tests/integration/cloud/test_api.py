"""The REST API on a real Postgres: auth on every route of the route table, pagination, time
filters, aggregates against the raw readings, anomalies with escalations, nodes, tokens, 413."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from rollup_check import assert_rollups_consistent
from sqlmodel import Session

from edgecloud.bench import rest
from edgecloud.cloud import auth
from edgecloud.cloud.api import create_app, queries
from edgecloud.cloud.api.deps import PUBLIC_PATHS, ScopeGuard
from edgecloud.cloud.api.params import floor_to, parse_bucket
from edgecloud.cloud.api.schemas import AggregatesOut
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.escalation.state import write_state
from edgecloud.cloud.settings import CloudSettings

END = datetime(2026, 11, 20, 12, 0, 7, tzinfo=UTC)  # not on a minute: edges get rounded
DATA = rest.Dataset(devices=4, readings=4 * 600, interval_s=10, end=END)  # 100 min per device


@dataclass
class Api:
    client: TestClient
    url: str
    tokens: dict[str, str]
    token_ids: dict[str, uuid.UUID]

    def get(self, path: str, scope: str = "read", **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[scope]}"}
        return self.client.get(path, params=params, headers=headers)


def _raw(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    app = create_app(CloudSettings(database_url=pg_url, max_body_bytes=4096))
    with TestClient(app) as client:  # the lifespan runs the migrations
        rest.seed(pg_url, DATA)  # readings, aggregates_1m and _1h, devices, nodes
        engine = make_engine(pg_url)
        tokens, ids = {}, {}
        with Session(engine) as session:
            for scope in ("read", "operate", "admin"):
                tokens[scope], row = auth.create_token(session, scope, f"test-{scope}")
                ids[scope] = row.id
            tokens["node"], row = auth.create_token(session, "node", "n", node_id="edge-0")
            ids["node"] = row.id
            _, row = auth.create_token(session, "read", "to-be-revoked")
            ids["victim"] = row.id
        engine.dispose()
        yield Api(client, pg_url, tokens, ids)


def _routes(app: Any) -> list[tuple[str, str, Any]]:
    from fastapi.routing import APIRoute, iter_route_contexts

    out = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, APIRoute):
            for method in sorted(ctx.methods or ()):
                out.append((method, str(ctx.path), route))
    return out


def _guard(route: Any) -> ScopeGuard | None:
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, ScopeGuard):
            return dep.call
        stack.extend(dep.dependencies)
    return None


WEAKER = {"read": "node", "operate": "read", "admin": "operate", "node": "read"}


def test_every_route_checks_its_token(api: Api) -> None:
    known = {
        "device_id": "dev-0001",
        "node_id": "edge-0",
        "token_id": str(api.token_ids["victim"]),
    }
    # the registry's routes take a registered device (the seed has readings, not registrations)
    added = api.client.post(
        "/api/v1/devices/registry",
        headers={"Authorization": f"Bearer {api.tokens['operate']}"},
        json={"devices": [{"device_id": known["device_id"], "node_id": known["node_id"]}]},
    )
    assert added.status_code == 201, added.text
    problems: list[str] = []
    checked = 0
    for method, path, route in _routes(api.client.app):
        guard = _guard(route)
        if path in PUBLIC_PATHS:
            assert guard is None, f"{path} is public but asks for a token"
            continue
        if guard is None:
            problems.append(f"{method} {path}: no ScopeGuard and not in PUBLIC_PATHS")
            continue
        params = {name: known.get(name, "x") for name in route.param_convertors}
        url = path.format(**params)
        if path == "/api/v1/aggregates":
            url += "?device_id=dev-0001"
        if path == "/api/v1/evaluations/live":
            url += "?model=sensor-anomaly"  # its one required query parameter
        call = api.client.request
        body = {"scope": "read"} if method == "POST" else None
        checked += 1
        attempts = [
            ({}, 401),
            ({"Authorization": "Bearer ecl_read_not-a-real-token-at-all-000000000"}, 401),
            ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ]
        if type(guard) is ScopeGuard:  # a subclass may accept more scopes than its own
            attempts.append(({"Authorization": f"Bearer {api.tokens[WEAKER[guard.scope]]}"}, 403))
        for headers, expect in attempts:
            res = call(method, url, headers=headers, json=body)
            if res.status_code != expect:
                problems.append(f"{method} {path} {headers or 'no token'}: {res.status_code}")
            elif expect == 401 and res.headers.get("www-authenticate") != "Bearer":
                problems.append(f"{method} {path}: 401 without WWW-Authenticate: Bearer")
            elif set(res.json()) < {"error", "detail"}:
                problems.append(f"{method} {path}: error body {res.text[:80]}")
        res = call(
            method, url, headers={"Authorization": f"Bearer {api.tokens[guard.scope]}"}, json=body
        )
        # with a known object and no body to invent, the right token must succeed
        must_succeed = method == "GET" and all(n in known for n in route.param_convertors)
        if res.status_code in (401, 403) or (must_succeed and res.status_code >= 300):
            problems.append(f"{method} {path} with a {guard.scope} token: {res.status_code}")
    assert checked >= 10
    assert not problems, "\n".join(problems)


def test_public_routes_need_no_token(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    page = api.client.get("/")
    assert page.status_code == 200 and "edgecloud" in page.text
    assert api.client.get("/dashboard/app.js").status_code == 200
    assert api.client.get("/openapi.json").json()["components"]["securitySchemes"]


def _all_pages(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        res = api.get(path, **params, **({"cursor": cursor} if cursor else {}))
        assert res.status_code == 200, res.text
        page = res.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("pagination does not end")


def test_readings_keyset_pagination_and_time_filters(api: Api) -> None:
    since, until = DATA.start + timedelta(minutes=10), DATA.start + timedelta(minutes=30)
    path = "/api/v1/devices/dev-0002/readings"
    desc = _all_pages(api, path, since=since.isoformat(), until=until.isoformat(), limit=7)
    # readings every 10 s from start+10 s: since is inclusive, until exclusive
    expected = [s for s in range(1, 601) if since <= DATA.start + timedelta(seconds=10 * s) < until]
    assert [r["seq"] for r in desc] == sorted(expected, reverse=True)
    assert {r["device_id"] for r in desc} == {"dev-0002"}
    asc = _all_pages(
        api, path, since=since.isoformat(), until=until.isoformat(), limit=9, order="asc"
    )
    assert [r["seq"] for r in asc] == sorted(expected)
    # epoch seconds and a "Z" time mean the same instant
    epoch = _all_pages(
        api,
        path,
        since=str(since.timestamp()),
        until=until.isoformat().replace("+00:00", "Z"),
        limit=1000,
    )
    assert len(epoch) == len(expected)
    # a cursor of one order is refused in the other
    first = api.get(path, limit=5).json()
    assert api.get(path, limit=5, order="asc", cursor=first["next_cursor"]).status_code == 400


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"since": "yesterday"}, 400, "bad_time"),
        ({"since": "2026-13-40T00:00:00Z"}, 400, "bad_time"),
        ({"since": "99999999999999"}, 400, "bad_time"),
        ({"since": "2026-11-20T12:00:00Z", "until": "2026-11-20T11:00:00Z"}, 400, "bad_range"),
        ({"limit": "0"}, 422, "invalid_request"),
        ({"limit": "1001"}, 422, "invalid_request"),
        ({"cursor": "not-a-cursor"}, 400, "bad_cursor"),
        ({"order": "sideways"}, 422, "invalid_request"),
    ],
)
def test_readings_bad_input_is_a_clear_4xx(
    api: Api, params: dict[str, str], status: int, error: str
) -> None:
    res = api.get("/api/v1/devices/dev-0001/readings", **params)
    assert res.status_code == status, res.text
    assert res.json()["error"] == error and res.json()["detail"]


def test_unknown_device_is_404(api: Api) -> None:
    for path in ("/api/v1/devices/nope/readings", "/api/v1/devices/bad%20id/readings"):
        res = api.get(path)
        assert res.status_code == 404 and res.json()["error"] == "unknown_device"
    assert api.get("/api/v1/aggregates", device_id="nope").status_code == 404


def _expected_aggregates(
    url: str, device: str, metric: str, step: timedelta, since: datetime, until: datetime
) -> list[tuple[datetime, int, float, float, float, int]]:
    """From the raw readings, not from aggregates_1m."""
    with _raw(url) as conn:
        rows = conn.execute(
            "SELECT ts, (values->>%s)::float8, anomaly FROM readings WHERE device_id = %s",
            (metric, device),
        ).fetchall()
    buckets: dict[datetime, list[tuple[float, bool]]] = defaultdict(list)
    for ts, value, anomaly in rows:
        if since <= ts < until:
            buckets[floor_to(ts, step)].append((value, anomaly))
    return [
        (
            b,
            len(v),
            min(x for x, _ in v),
            max(x for x, _ in v),
            sum(x for x, _ in v) / len(v),
            sum(a for _, a in v),
        )
        for b, v in sorted(buckets.items())
    ]


@pytest.mark.parametrize("bucket", ["1m", "5m", "15m", "1h", "1d"])
def test_aggregates_match_the_raw_readings(api: Api, bucket: str) -> None:
    step = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "1d": 1440}[bucket]
    since, until = DATA.start + timedelta(minutes=7, seconds=13), END - timedelta(minutes=3)
    res = api.get(
        "/api/v1/aggregates",
        device_id="dev-0003",
        metric="temperature",
        bucket=bucket,
        since=since.isoformat(),
        until=until.isoformat(),
    )
    assert res.status_code == 200, res.text
    body = AggregatesOut.model_validate(res.json())  # the hand-built body has the model's shape
    delta = timedelta(minutes=step)
    assert body.since == floor_to(since, delta) and body.bucket == bucket
    assert body.until == (
        until if floor_to(until, delta) == until else floor_to(until, delta) + delta
    )
    expected = _expected_aggregates(
        api.url, "dev-0003", "temperature", delta, body.since, body.until
    )
    got = [(p.bucket, p.count, p.min, p.max, p.mean, p.anomaly_count) for p in body.items]
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected, strict=True):
        assert g[:2] == e[:2] and g[5] == e[5]
        assert g[2:5] == pytest.approx(e[2:5], rel=1e-9)
    assert sum(p.anomaly_count for p in body.items) > 0 or bucket == "1m"


@pytest.mark.parametrize("bucket", ["1h", "2h", "3h", "1d"])
@pytest.mark.parametrize("metric", ["temperature", None])
def test_whole_hour_buckets_from_the_rollup_answer_what_the_minutes_answer(
    api: Api, bucket: str, metric: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Byte for byte: the API's answer (from aggregates_1h) ends with the items the minute
    table's statement builds; the SQLAlchemy path gives the same points from either table."""
    step = parse_bucket(bucket)
    assert queries.rollup(step)[0] == "aggregates_1h"
    assert "aggregates_1h" in queries.pg_items_json_sql(step, metric)
    params = {"device_id": "dev-0001", "bucket": bucket}
    params["since"] = (DATA.start - timedelta(minutes=50)).isoformat()
    params["until"] = (END + timedelta(minutes=5)).isoformat()
    if metric is not None:
        params["metric"] = metric
    res = api.get("/api/v1/aggregates", **params)
    assert res.status_code == 200, res.text
    body = res.json()
    since, until = datetime.fromisoformat(body["since"]), datetime.fromisoformat(body["until"])
    assert floor_to(since, timedelta(hours=1)) == since and len(body["items"]) > 0
    minutes_sql = queries._PG_ITEMS_JSON[("aggregates_1m", True, metric is not None)]
    args = {"device_id": "dev-0001", "metric": metric, "since": since, "until": until}
    with _raw(api.url) as conn:
        row = conn.execute(minutes_sql, {**args, "step": step}).fetchone()
    assert row is not None and res.text.endswith(',"items":' + row[0] + "}")

    engine = make_engine(api.url)
    try:
        with Session(engine) as session:
            hours = queries.aggregates(session, step=step, **args)
            monkeypatch.setattr(queries, "rollup", lambda s: ("aggregates_1m", True))
            minutes = queries.aggregates(session, step=step, **args)
    finally:
        engine.dispose()
    assert hours == minutes and len(hours) == len(body["items"])


def test_seeded_rollups_are_consistent(api: Api) -> None:
    engine = make_engine(api.url)
    try:
        r = assert_rollups_consistent(engine)
    finally:
        engine.dispose()
    assert len({b for _, _, b in r["1h"]}) >= 2


def test_aggregates_all_metrics_and_errors(api: Api) -> None:
    res = api.get(
        "/api/v1/aggregates",
        device_id="dev-0000",
        bucket="1h",
        since=DATA.start.isoformat(),
        until=END.isoformat(),
    ).json()
    assert {p["metric"] for p in res["items"]} == {"temperature", "vibration_rms", "pressure"}
    assert sum(p["count"] for p in res["items"] if p["metric"] == "pressure") == 600
    for params, error in (
        ({"bucket": "90s"}, "bad_bucket"),
        ({"bucket": "8d"}, "bad_bucket"),
        ({"bucket": "1m", "since": "2000-01-01T00:00:00Z"}, "range_too_large"),
        ({"since": "-1h", "until": "-2h"}, "bad_range"),
    ):
        out = api.get("/api/v1/aggregates", device_id="dev-0000", **params)
        assert (out.status_code, out.json()["error"]) == (400, error), params
    assert api.get("/api/v1/aggregates").status_code == 422


def test_anomalies_come_with_their_escalation(api: Api) -> None:
    with _raw(api.url) as conn:
        event_id, device = conn.execute(
            "SELECT event_id, device_id FROM readings WHERE anomaly ORDER BY ts DESC LIMIT 1"
        ).fetchone() or (None, None)
        conn.execute(
            "INSERT INTO escalations (event_id, status, severity, explanation, suggested_action,"
            " model, tokens, attempts, created_at, updated_at) VALUES (%s, 'done', 'high',"
            " 'bearing wear', 'inspect the spindle', 'gpt-x', 120, 1, now(), now())",
            (event_id,),
        )
        total = conn.execute("SELECT count(*) FROM readings WHERE anomaly").fetchone()
    items = _all_pages(api, "/api/v1/anomalies", limit=10)
    assert total is not None and len(items) == total[0] > 10
    assert len({i["event_id"] for i in items}) == len(items)
    assert [i["ts"] for i in items] == sorted((i["ts"] for i in items), reverse=True)
    first = items[0]
    assert first["event_id"] == str(event_id) and first["device_id"] == device
    assert first["escalation"]["severity"] == "high"
    assert first["escalation"]["suggested_action"] == "inspect the spindle"
    assert all(i["escalation"] is None for i in items[1:])
    only = _all_pages(api, "/api/v1/anomalies", device_id="dev-0001", limit=1000)
    assert only and {i["device_id"] for i in only} == {"dev-0001"}
    assert api.get("/api/v1/anomalies", device_id="no such\x00dev").json()["items"] == []


def test_nodes_devices_and_escalation_status(api: Api) -> None:
    nodes = api.get("/api/v1/nodes").json()["items"]
    assert [n["node_id"] for n in nodes] == ["edge-0", "edge-1"]
    assert nodes[0]["active_models"] == [{"name": "bench-model", "version": "1"}]
    assert nodes[0]["status"] == "online"
    site2 = api.get("/api/v1/nodes", selector="site=site-2").json()["items"]
    assert [n["node_id"] for n in site2] == ["edge-1"]
    assert api.get("/api/v1/nodes", selector="nonsense").status_code == 400
    detail = api.get("/api/v1/nodes/edge-0").json()
    assert detail["devices"] == 2 and detail["model_status"] == []
    assert api.get("/api/v1/nodes/edge-9").status_code == 404
    devices = _all_pages(api, "/api/v1/devices", limit=3)
    assert [d["device_id"] for d in devices] == [f"dev-{i:04d}" for i in range(4)]
    assert all(d["readings"] == 600 for d in devices)
    status = api.get("/api/v1/escalation").json()
    assert status["status"] == "unknown" and status["enabled"] is False
    engine = make_engine(api.url)
    write_state(engine, {"state": "budget_exhausted", "tokens_used": 10, "token_budget": 10})
    engine.dispose()
    status = api.get("/api/v1/escalation").json()
    assert status["status"] == "budget_exhausted" and "budget" in status["reason"]


def test_tokens_over_the_api_and_revocation(api: Api) -> None:
    made = api.client.post(
        "/api/v1/tokens",
        json={"scope": "read", "name": "dash"},
        headers={"Authorization": f"Bearer {api.tokens['admin']}"},
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert token.startswith("ecl_read_")
    with _raw(api.url) as conn:
        stored = conn.execute(
            "SELECT token_hash FROM api_tokens WHERE id = %s", (made.json()["id"],)
        ).fetchone()
    assert stored == (auth.hash_token(token),)  # only the hash is kept
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v1/nodes", headers=bearer).status_code == 200
    bad = api.client.post(
        "/api/v1/tokens",
        json={"scope": "node"},
        headers={"Authorization": f"Bearer {api.tokens['admin']}"},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "node_id_required"
    gone = api.client.delete(
        f"/api/v1/tokens/{made.json()['id']}",
        headers={"Authorization": f"Bearer {api.tokens['admin']}"},
    )
    assert gone.status_code == 204
    assert api.client.get("/api/v1/nodes", headers=bearer).status_code == 401


def test_oversized_bodies_get_413(api: Api) -> None:
    admin = {"Authorization": f"Bearer {api.tokens['admin']}", "content-type": "application/json"}
    big = b'{"scope": "read", "name": "' + b"x" * 8192 + b'"}'
    res = api.client.post("/api/v1/tokens", content=big, headers=admin)
    assert res.status_code == 413 and res.json()["error"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed body is counted
        yield b'{"scope": "read", "name": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    res = api.client.post("/api/v1/tokens", content=chunks(), headers=admin)
    assert res.status_code == 413


def test_metrics_are_prometheus_text(api: Api) -> None:
    api.get("/api/v1/nodes")
    text = api.get("/metrics").text
    assert 'edgecloud_api_requests_total{method="GET",route="/api/v1/nodes",status="200"}' in text
    assert 'edgecloud_fleet{what="readings"} 2400.0' in text


# --- the aggregates fast path (cloud/api/fastpath.py) -----------------------------------------


def _new_token(url: str, name: str) -> tuple[str, uuid.UUID]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            token, row = auth.create_token(session, "read", name)
            return token, row.id
    finally:
        engine.dispose()


def _revoke(url: str, token_id: uuid.UUID) -> bool:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return auth.revoke_token(session, token_id)
    finally:
        engine.dispose()


@pytest.fixture
def fast_answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per aggregates request the fast path saw: True when it answered it."""
    from edgecloud.cloud.api import fastpath

    seen: list[bool] = []
    original = fastpath.AggregatesFastPath._answer

    async def spy(self: Any, state: Any, scope: Any) -> str | None:
        text = await original(self, state, scope)
        seen.append(text is not None)
        return text

    monkeypatch.setattr(fastpath.AggregatesFastPath, "_answer", spy)
    return seen


def test_fast_path_answers_exactly_what_the_route_answers(
    api: Api, fast_answers: list[bool]
) -> None:
    params = {
        "device_id": "dev-0001",
        "bucket": "5m",
        "since": (DATA.start + timedelta(minutes=3)).isoformat(),
        "until": END.isoformat(),
    }
    for metric in ("temperature", None):
        query = {**params, **({"metric": metric} if metric else {})}
        token, _ = _new_token(api.url, f"fast-{metric}")
        headers = {"Authorization": f"Bearer {token}"}
        first = api.client.get("/api/v1/aggregates", params=query, headers=headers)
        second = api.client.get("/api/v1/aggregates", params=query, headers=headers)
        assert fast_answers[-2:] == [False, True]  # unknown token: the route; then cached: fast
        assert first.status_code == second.status_code == 200
        assert second.headers["content-type"] == "application/json"
        assert second.json() == first.json()
        assert len(first.json()["items"]) > 0


def test_fast_path_leaves_errors_and_other_scopes_to_the_route(
    api: Api, fast_answers: list[bool]
) -> None:
    # warm the read token's cache entry, so that only the request decides
    assert api.get("/api/v1/aggregates", device_id="dev-0000").status_code == 200
    del fast_answers[:]
    cases = [
        ({"device_id": "nope"}, "read", 404),
        ({"device_id": "dev-0000", "bucket": "90s"}, "read", 400),
        ({"device_id": "dev-0000", "since": "-1h", "until": "-2h"}, "read", 400),
        ({"device_id": "x" * 65}, "read", 422),
        ({}, "read", 422),
        ({"device_id": "dev-0000"}, "node", 403),
        ({"device_id": "dev-0000"}, "node", 403),  # cached now: still the route's 403
    ]
    for params, scope, status in cases:
        res = api.get("/api/v1/aggregates", scope, **params)
        assert res.status_code == status, (params, scope, res.text)
        assert "error" in res.json() or "detail" in res.json()
    assert not any(fast_answers)
    unauthenticated = api.client.get("/api/v1/aggregates", params={"device_id": "dev-0000"})
    assert unauthenticated.status_code == 401


def test_fast_path_stops_serving_a_revoked_token(api: Api, fast_answers: list[bool]) -> None:
    token, token_id = _new_token(api.url, "soon-revoked")
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        ok = api.client.get("/api/v1/aggregates", params={"device_id": "dev-0002"}, headers=headers)
        assert ok.status_code == 200
    assert fast_answers[-1] is True
    assert _revoke(api.url, token_id)
    time.sleep(5.5)  # the verifier's cache lives 5 s
    gone = api.client.get("/api/v1/aggregates", params={"device_id": "dev-0002"}, headers=headers)
    assert gone.status_code == 401
    assert fast_answers[-1] is False


def _fast_count(api: Api) -> float:
    line = 'edgecloud_api_requests_total{method="GET",route="/api/v1/aggregates",status="200"} '
    for row in api.get("/metrics").text.splitlines():
        if row.startswith(line):
            return float(row[len(line) :])
    return 0.0


def test_fast_path_answers_are_counted_in_the_metrics(api: Api, fast_answers: list[bool]) -> None:
    assert api.get("/api/v1/aggregates", device_id="dev-0003").status_code == 200  # warm
    before = _fast_count(api)
    del fast_answers[:]
    for _ in range(3):
        assert api.get("/api/v1/aggregates", device_id="dev-0003").status_code == 200
    assert fast_answers == [True, True, True]
    assert _fast_count(api) == before + 3


def test_fast_path_leaves_a_request_with_a_body_to_the_stack(
    api: Api, fast_answers: list[bool]
) -> None:
    assert api.get("/api/v1/aggregates", device_id="dev-0003").status_code == 200  # warm
    del fast_answers[:]
    headers = {"Authorization": f"Bearer {api.tokens['read']}"}
    res = api.client.request(
        "GET", "/api/v1/aggregates", params={"device_id": "dev-0003"}, headers=headers,
        content=b"x" * 10,
    )  # fmt: skip
    assert res.status_code == 200
    assert fast_answers == [False]  # declined: BodyLimit and the route judge a body
