"""Rollouts and node desired state through the real API on Postgres, with simulated node
reports on the fallback route: ETag / 304, long-poll woken by the engine, own-node only,
waves advancing on reports, pause / resume / abort, and a cloud restart mid-rollout."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from registry_api import Api, running_api
from sqlmodel import Session

from edgecloud.bench.rollout_models import linear_bundle
from edgecloud.cloud.db import Node, make_engine
from edgecloud.cloud.migrations import migrate

NODES = ["n1", "n2", "n3", "n4"]


def add_nodes(url: str) -> None:
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s:
        for n in NODES:
            s.add(
                Node(
                    node_id=n,
                    labels={"site": "a"},
                    last_heartbeat=datetime.now(UTC),
                    active_models=[{"name": "press-linear", "version": "1.0.0"}],
                )
            )
        s.commit()
    engine.dispose()


def report(api: Api, token: str, node: str, rid: str, phase: str, **metrics: float) -> int:
    ev = {
        "schema": "edgecloud.event/v1",
        "event_id": str(uuid.uuid4()),
        "type": "model_status",
        "node_id": node,
        "ts": datetime.now(UTC).isoformat(),
        "data": {
            "rollout_id": rid,
            "model": "press-linear",
            "version": "1.1.0",
            "phase": phase,
            "metrics": metrics,
        },
    }
    res = api.client.post(
        f"/api/v1/nodes/{node}/model-status", json=ev, headers={"Authorization": f"Bearer {token}"}
    )
    return res.status_code


def wait_for(api: Api, rid: str, pred: Any, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        ro: dict[str, Any] = api.client.get(f"/api/v1/rollouts/{rid}", headers=api.h("read")).json()
        if pred(ro):
            return ro
        assert time.monotonic() < deadline, ro
        time.sleep(0.05)


def test_rollout_desired_state_and_steering(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_nodes(pg_url)
    with running_api(pg_url, tmp_path / "store", monkeypatch) as api:
        assert api.push(linear_bundle(tmp_path / "v11", "1.1.0", api.key))[0] == 201
        tokens = {n: api.node_token(n) for n in NODES}
        hn = {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}
        first = api.client.get("/api/v1/nodes/n1/desired", headers=hn["n1"])
        assert first.status_code == 200 and first.json() == {"node_id": "n1", "model": None}
        etag = first.headers["etag"]
        same = api.client.get(
            "/api/v1/nodes/n1/desired", headers={**hn["n1"], "If-None-Match": etag}
        )
        assert same.status_code == 304
        other = api.client.get("/api/v1/nodes/n2/desired", headers=hn["n1"])
        assert (other.status_code, other.json()["error"]) == (403, "forbidden")
        assert api.client.get("/api/v1/nodes/n1/desired", headers=api.h("admin")).status_code == 403

        # a long-poll of n1 is answered as soon as the rollout assigns it
        polled: dict[str, Any] = {}

        def long_poll() -> None:
            t0 = time.monotonic()
            res = api.client.get(
                "/api/v1/nodes/n1/desired",
                params={"wait": 20},
                headers={**hn["n1"], "If-None-Match": etag},
            )
            polled.update(status=res.status_code, body=res.json(), s=time.monotonic() - t0)

        poller = threading.Thread(target=long_poll)
        poller.start()
        time.sleep(0.5)
        res = api.client.post(
            "/api/v1/rollouts",
            headers=api.h(),
            json={
                "model": "press-linear:1.1.0",
                "selector": {"site": "a"},
                "waves": [25, 100],
                "gates": {"min_agreement": 0.95},
            },
        )
        assert res.status_code == 201, res.text
        rid = res.json()["id"]
        poller.join(20)
        assert polled["status"] == 200 and 0.5 < polled["s"] < 5
        model = polled["body"]["model"]
        assert (model["name"], model["version"], model["rollout_id"]) == (
            "press-linear",
            "1.1.0",
            rid,
        )
        assert model["shadow"]["min_agreement"] == 0.95
        assert api.client.get(model["artifact_url"], headers=hn["n1"]).status_code == 200

        assert report(api, tokens["n1"], "n1", rid, "shadow", agreement=0.99) == 202
        assert report(api, tokens["n1"], "n1", rid, "active", swap_ms=0.1) == 202
        ro = wait_for(api, rid, lambda r: r["current_wave"] == 1)
        assert [n["status"] for n in ro["nodes"]] == ["active", "assigned", "assigned", "assigned"]

        res = api.client.post(f"/api/v1/rollouts/{rid}/pause", headers=api.h())
        assert res.json()["state"] == "paused"
        assert api.client.post(f"/api/v1/rollouts/{rid}/pause", headers=api.h()).status_code == 409
        assert (
            api.client.post(f"/api/v1/rollouts/{rid}/pause", headers=api.h("read")).status_code
            == 403
        )
    # the API process goes away mid-rollout; a new one carries on from the database
    with running_api(pg_url, tmp_path / "store", monkeypatch) as api2:
        res = api2.client.post(f"/api/v1/rollouts/{rid}/resume", headers=api2.h())
        assert res.json()["state"] == "running"
        for n in ("n2", "n3"):
            report(api2, tokens[n], n, rid, "active", agreement=1.0)
        report(api2, tokens["n4"], "n4", rid, "failed", agreement=1.0)
        ro = wait_for(api2, rid, lambda r: r["state"] == "failed")
        assert [n["status"] for n in ro["nodes"]] == ["active"] + ["rolled_back"] * 3
        assert ro["detail"] == "wave 2 rolled back: n4: failed: no detail"
        back = api2.client.get("/api/v1/nodes/n2/desired", headers=hn["n2"]).json()
        assert (
            back["model"] is None
        )  # previous 1.0.0 is not in the registry: null, n2 keeps its own
        kept = api2.client.get("/api/v1/nodes/n1/desired", headers=hn["n1"]).json()
        assert kept["model"]["version"] == "1.1.0"
        res = api2.client.post(f"/api/v1/rollouts/{rid}/abort", headers=api2.h())
        assert (res.status_code, res.json()["error"]) == (409, "bad_state")
