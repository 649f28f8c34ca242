"""Per-hop counters of a node on a real Postgres: ``GET /api/v1/nodes/{id}`` ``hops`` and the
``edgecloud_node_hop`` / heartbeat / rollout gauges of ``/metrics``, from the latest agent and
bridge heartbeats and the cloud's per-device counters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from edgecloud.bench import rest
from edgecloud.cloud import auth
from edgecloud.cloud.api import create_app
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.settings import CloudSettings

END = datetime(2026, 11, 20, 12, 0, 7, tzinfo=UTC)
DATA = rest.Dataset(devices=4, readings=4 * 50, interval_s=10, end=END)  # 50 per device


@pytest.fixture
def client(pg_url: str) -> Iterator[tuple[TestClient, str, str]]:
    app = create_app(CloudSettings(database_url=pg_url))
    with TestClient(app) as c:
        rest.seed(pg_url, DATA)  # devices dev-0000..3 on edge-0 / edge-1, nodes without counters
        engine = make_engine(pg_url)
        with Session(engine) as session:
            token, _ = auth.create_token(session, "read", "hops")
        engine.dispose()
        yield c, token, pg_url.replace("postgresql+psycopg://", "postgresql://")


def _heartbeats(url: str, node: str, agent: dict[str, int], bridge: dict[str, int]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE nodes SET agent = %s, bridge = %s WHERE node_id = %s",
            (json.dumps({"counters": agent}), json.dumps({"counters": bridge}), node),
        )


def test_hops_show_where_readings_stopped(client: tuple[TestClient, str, str]) -> None:
    c, token, url = client
    headers = {"Authorization": f"Bearer {token}"}
    agent = {"received": 130, "processed": 120, "events_published": 110, "dead_letters": 10}
    bridge = {"events_in": 115, "processed": 100}
    _heartbeats(url, "edge-0", agent, bridge)
    detail = c.get("/api/v1/nodes/edge-0", headers=headers).json()
    per_device = DATA.readings // DATA.devices
    stored = detail["devices"] * per_device
    assert detail["hops"] == {
        "received": 130,
        "stored": 120,
        "sent": 110,
        "bridge_received": 115,
        "acked_by_kafka": 100,
        "stored_in_cloud": stored,
    }
    assert stored > 0
    # a node that never sent a bridge heartbeat: those hops are unknown, not 0
    _heartbeats(url, "edge-1", agent, {})
    hops = c.get("/api/v1/nodes/edge-1", headers=headers).json()["hops"]
    assert hops["bridge_received"] is None and hops["acked_by_kafka"] is None
    assert hops["stored"] == 120

    text = c.get("/metrics", headers=headers).text
    assert 'edgecloud_node_hop{hop="acked_by_kafka",node_id="edge-0"} 100.0' in text
    assert f'edgecloud_node_hop{{hop="stored_in_cloud",node_id="edge-0"}} {stored:.1f}' in text
    assert 'hop="acked_by_kafka",node_id="edge-1"' not in text
    assert 'edgecloud_node_last_heartbeat_timestamp_seconds{node_id="edge-0"}' in text
    assert "# TYPE edgecloud_rollouts gauge" in text


def test_unknown_node_is_404_not_hops(client: tuple[TestClient, str, str]) -> None:
    c, token, _ = client
    got = c.get("/api/v1/nodes/edge-9", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 404
