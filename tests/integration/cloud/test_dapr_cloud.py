"""The cloud API under a real daprd (deploy/dapr/cloud) on the real Kafka and Postgres: rollout
and node transitions on Dapr pub/sub (``pubsub.kafka``) to a subscriber app behind ITS own
sidecar, exactly once and in order; the sidecar killed with -9 while a rollout goes on
(counted, logged once); the ``rollout-tick`` cron binding driving the engine's tick."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_api import LiveApi, live_api
from sqlmodel import Session

from edgecloud.adapters.kafka_admin import delete_topics_with_prefix
from edgecloud.adapters.kafka_consumer import ensure_topics
from edgecloud.bench.rollout_models import linear_bundle
from edgecloud.cloud import auth
from edgecloud.cloud.db import Node, make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.cloud.transitions import topics
from edgecloud.core.archive import pack_folder
from edgecloud.dev.dapr import Sidecar, SidecarPorts, SidecarSpec
from edgecloud.dev.process import free_port, wait_until
from edgecloud.dev.sidecars import kafka_secrets
from edgecloud.dev.stack import Infra
from integration.edge.dapr_helpers import Subscriber, wait_subscribed

pytestmark = pytest.mark.integration
NODES = ["n1", "n2"]


@dataclass
class Cloud:
    api: LiveApi
    sidecar: Sidecar
    subscriber: Subscriber
    topics: dict[str, str]
    url: str
    node_tokens: dict[str, str]

    def received(self, topic: str) -> list[dict[str, Any]]:
        return [b["data"] for b in list(self.subscriber.received) if b["topic"] == topic]

    def rollout_kinds(self, rid: str) -> list[str]:
        return [e["type"] for e in self.received(self.topics["rollouts"]) if e["rollout_id"] == rid]

    def metric(self, name: str, labels: str) -> float:
        text = httpx.get(f"{self.api.base}/metrics", headers=self.api.h("read"), timeout=10).text
        found = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0


def _cloud_sidecar(state: Path, stack: Infra, app_id: str, port: int | None, **env: str) -> Sidecar:
    spec = SidecarSpec(app_id, "cloud", SidecarPorts.free(), port, kafka_secrets(stack), env=env)
    car = Sidecar(state, spec)
    car.wait_ready(car.start())
    return car


def _add_nodes(url: str, last_heartbeat: datetime) -> dict[str, str]:
    migrate(url)
    engine = make_engine(url)
    tokens = {}
    with Session(engine) as s:
        for n in NODES:
            labels = {"site": "a"}
            models = [{"name": "press-linear", "version": "1.0.0"}]
            s.add(Node(node_id=n, labels=labels, last_heartbeat=last_heartbeat,
                       active_models=models))  # fmt: skip
        s.commit()
        for n in NODES:
            tokens[n], _ = auth.create_token(s, "node", n, n)
    engine.dispose()
    return tokens


def _set_heartbeat(url: str, node: str, ts: datetime) -> None:
    engine = make_engine(url)
    with Session(engine) as s:
        row = s.get(Node, node)
        assert row is not None
        row.last_heartbeat = ts
        s.add(row)
        s.commit()
    engine.dispose()


@pytest.fixture(scope="module")
def cloud(stack: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """One API, its sidecar and a subscriber for the module (the tests run in file order)."""
    tmp_path = tmp_path_factory.mktemp("dapr-cloud")
    db_name = f"t_{uuid.uuid4().hex[:8]}"
    pg_url = stack.create_database(db_name)
    prefix = f"edgecloud.dapr.t{uuid.uuid4().hex[:8]}."
    names = topics(prefix)
    ensure_topics(stack.kafka_client(), list(names.values()))
    old = datetime.now(UTC) - timedelta(minutes=10)
    tokens = _add_nodes(pg_url, old)  # n1, n2 offline at first
    state = tmp_path / "state"
    subscriber = Subscriber("cloud-pubsub", list(names.values()))
    sub_car = _cloud_sidecar(state, stack, f"sub-{uuid.uuid4().hex[:6]}", subscriber.port)
    port = free_port()
    app_token = secrets.token_urlsafe(18)
    car = _cloud_sidecar(state, stack, "cloud-api", port, APP_API_TOKEN=app_token)
    env = {
        "EDGECLOUD_DAPR_HTTP_PORT": str(car.spec.ports.http),
        "EDGECLOUD_DAPR_GRPC_PORT": str(car.spec.ports.grpc),
        "EDGECLOUD_DAPR_TOPIC_PREFIX": prefix,
        "EDGECLOUD_DAPR_APP_TOKEN": app_token,
        "EDGECLOUD_ROLLOUT_TICK_S": "0.2",
        "EDGECLOUD_NODE_SCAN_S": "0.3",
    }
    try:
        wait_subscribed(sub_car)
        with live_api(pg_url, tmp_path, port=port, **env) as api:
            yield Cloud(api, car, subscriber, names, pg_url, tokens)
    finally:
        for c in (car, sub_car):
            c.stop()
        subscriber.stop()
        delete_topics_with_prefix(stack.kafka_client(), prefix)
        stack.drop_database(db_name)


def _report(cloud: Cloud, node: str, rid: str, version: str, phase: str) -> None:
    ev = {
        "schema": "edgecloud.event/v1", "event_id": str(uuid.uuid4()), "type": "model_status",
        "node_id": node, "ts": datetime.now(UTC).isoformat(),
        "data": {"rollout_id": rid, "model": "press-linear", "version": version,
                 "phase": phase, "metrics": {"agreement": 0.99}},
    }  # fmt: skip
    res = httpx.post(
        f"{cloud.api.base}/api/v1/nodes/{node}/model-status", json=ev, timeout=10,
        headers={"Authorization": f"Bearer {cloud.node_tokens[node]}"},
    )  # fmt: skip
    assert res.status_code == 202, res.text


def _start(cloud: Cloud, version: str, tmp_path: Path) -> str:
    bundle = pack_folder(linear_bundle(tmp_path / version, version, cloud.api.key))
    assert cloud.api.upload(bundle).status_code == 201
    res = httpx.post(
        f"{cloud.api.base}/api/v1/rollouts", headers=cloud.api.h(), timeout=10,
        json={"model": f"press-linear:{version}", "selector": {"site": "a"}, "waves": [50, 100],
              "gates": {"min_agreement": 0.9, "offline_after_s": 3600}},
    )  # fmt: skip
    assert res.status_code == 201, res.text
    return str(res.json()["id"])


def _state(cloud: Cloud, rid: str) -> dict[str, Any]:
    url = f"{cloud.api.base}/api/v1/rollouts/{rid}"
    body: dict[str, Any] = httpx.get(url, headers=cloud.api.h("read"), timeout=10).json()
    return body


def test_transitions_reach_the_subscriber_once_in_order(cloud: Cloud, tmp_path: Path) -> None:
    nodes = cloud.topics["nodes"]
    wait_until(lambda: len(cloud.received(nodes)) >= 2, 60.0, "first node scan")
    assert sorted((e["node_id"], e["type"]) for e in cloud.received(nodes)) == [
        ("n1", "node.offline"), ("n2", "node.offline"),
    ]  # fmt: skip

    rid = _start(cloud, "1.1.0", tmp_path)
    for wave in (1, 2):  # one node per wave: report for the one assigned
        wait_until(lambda: _state(cloud, rid)["counts"].get("assigned", 0) >= 1, 30.0, "assigned")
        assigned = [n["node_id"] for n in _state(cloud, rid)["nodes"] if n["status"] == "assigned"]
        for phase in ("shadow", "active"):
            _report(cloud, assigned[0], rid, "1.1.0", phase)
        wait_until(lambda w=wave: cloud.rollout_kinds(rid).count("rollout.wave_passed") >= w,
                   60.0, f"wave {wave} passed")  # fmt: skip
    done = ["rollout.started", "rollout.wave_passed", "rollout.wave_passed", "rollout.completed"]
    wait_until(lambda: len(cloud.rollout_kinds(rid)) >= 4, 60.0, "rollout completed")
    assert cloud.rollout_kinds(rid) == done
    events = [e for e in cloud.received(cloud.topics["rollouts"]) if e["rollout_id"] == rid]
    assert [e["wave"] for e in events] == [1, 1, 2, 2]
    assert events[-1]["state"] == "succeeded" and events[0]["version"] == "1.1.0"
    assert len({e["id"] for e in events}) == 4
    first = cloud.subscriber.received[0]  # CloudEvents 1.0, our event in data
    assert first["specversion"] == "1.0" and first["pubsubname"] == "cloud-pubsub"

    _set_heartbeat(cloud.url, "n1", datetime.now(UTC))
    wait_until(lambda: len(cloud.received(nodes)) >= 3, 60.0, "n1 online")
    assert [(e["node_id"], e["type"]) for e in cloud.received(nodes)][2:] == [("n1", "node.online")]
    assert cloud.rollout_kinds(rid) == done  # still once each
    assert cloud.metric("edgecloud_dapr_out_sent_total", 'what="pubsub"') == 7
    assert cloud.metric("edgecloud_dapr_out_failures_total", 'what="pubsub"') == 0


def test_the_cron_binding_drives_the_rollout_tick(cloud: Cloud) -> None:
    """deploy/dapr/cloud/rollout-tick.yaml (@every 5s, scoped to cloud-api): daprd calls the
    route with the app token; a call without it is refused."""
    wait_until(lambda: cloud.metric("edgecloud_rollout_ticks_total", 'trigger="dapr"') >= 2,
               60.0, "ticks by the cron binding")  # fmt: skip
    assert cloud.metric("edgecloud_rollout_ticks_total", 'trigger="loop"') > 0  # its own timer
    url = f"{cloud.api.base}/dapr/rollout-tick"
    bad = httpx.post(url, headers={"dapr-api-token": "wrong"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"] == "unauthorized"
    assert httpx.post(url, timeout=10).status_code == 401


def test_sidecar_killed_rollout_goes_on_failures_counted(cloud: Cloud, tmp_path: Path) -> None:
    nodes = cloud.topics["nodes"]
    wait_until(lambda: len(cloud.received(nodes)) >= 3, 60.0, "the node transitions so far")
    cloud.sidecar.kill()
    rid = _start(cloud, "1.2.0", tmp_path)  # started: not published
    res = httpx.post(f"{cloud.api.base}/api/v1/rollouts/{rid}/abort", headers=cloud.api.h())
    assert res.status_code == 200 and res.json()["state"] == "aborted"
    failures = 'what="pubsub"'
    wait_until(lambda: cloud.metric("edgecloud_dapr_out_failures_total", failures) == 2,
               30.0, "failed publishes counted")  # fmt: skip
    assert cloud.api.log.read_text().count("dapr pubsub failing") == 1
    assert cloud.rollout_kinds(rid) == []
    cloud.sidecar.wait_ready(cloud.sidecar.start())
    _set_heartbeat(cloud.url, "n2", datetime.now(UTC))
    wait_until(lambda: ("n2", "node.online") in [(e["node_id"], e["type"])
               for e in cloud.received(nodes)], 60.0, "n2 online after the restart")  # fmt: skip
    assert "dapr pubsub works again" in cloud.api.log.read_text()
