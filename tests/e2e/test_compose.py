"""compose.edge.yaml and compose.cloud.yaml brought up for real (issue 21, rung 1), on the
project's own dockerd, with the images of ``make images`` and free host ports:

``mosquitto_pub`` publishes N readings into the edge compose's broker; the edge agent stores
them and publishes events, the edge bridge forwards them over SASL/SCRAM to the cloud
compose's Kafka, the worker stores them, and the cloud REST API returns N (per device, seqs
equal to those sent, event ids unique). A row in the edge Postgres' ``dapr_configuration``
becomes the agent's threshold through its Dapr sidecar. ``down`` + ``up`` of the cloud keeps
them (named volumes); ``down`` leaves no container of either project."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from docker_engine import ROOT, DockerEngine

from edgecloud.dev import process

DEVICES = 4
PER_DEVICE = 100
COMPOSE = ROOT / "scripts" / "compose.sh"


class Compose:
    def __init__(self, engine: DockerEngine, state: Path, project: str, ports: int) -> None:
        self.engine = engine
        self.project = project
        self.mqtt_port, self.agent_port, self.api_port, self.kafka_port = range(ports, ports + 4)
        self.env = {
            **engine.env,
            "EDGECLOUD_STATE_DIR": str(state),
            "EDGECLOUD_COMPOSE_PROJECT": project,
            "NODE_ID": "edge-c1",
            "NODE_LABELS": "site=compose",
            "EDGE_MQTT_PORT": str(self.mqtt_port),
            "AGENT_HTTP_PORT": str(self.agent_port),
            "API_PORT": str(self.api_port),
            "KAFKA_PORT": str(self.kafka_port),
        }
        self.secrets = state / "compose" / "secrets"

    def __call__(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(
            [str(COMPOSE), *args], env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"compose.sh {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def running(self, side: str) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}-{side}"
        return self.engine.run("ps", "-q", "--filter", label).stdout.split()

    def logs(self, side: str) -> str:
        done = subprocess.run(
            [str(COMPOSE), "logs", side, "--no-color", "--tail", "40"], env=self.env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return done.stdout[-6000:]


@pytest.fixture
def compose(docker_engine: DockerEngine, tmp_path: Path) -> Iterator[Compose]:
    c = Compose(
        docker_engine, tmp_path / "state", f"ect{uuid.uuid4().hex[:6]}", process.free_port_block(4)
    )
    yield c
    for side in ("edge", "cloud"):  # -v: the test's volumes go too
        argv = [str(COMPOSE), "down", side, "-v"]
        subprocess.run(argv, env=c.env, capture_output=True, check=False)
    assert not c.running("edge") and not c.running("cloud"), "containers left after down"


def _publish(c: Compose, device: str, seqs: range) -> None:
    now = time.time()
    lines = "".join(
        json.dumps({"device_id": device, "seq": s, "ts": round(now + s / 1000, 3),
                    "values": {"temperature": 20.0 + s % 7, "vibration_rms": 0.1}}) + "\n"
        for s in seqs
    )  # fmt: skip
    password = (c.secrets / "mqtt-simulator").read_text()
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(c.mqtt_port), "-u", "simulator", "-P",
         password, "-q", "1", "-t", f"devices/{device}/telemetry", "-l"],
        input=lines, text=True, check=True, timeout=120,
    )  # fmt: skip


def _read_token(c: Compose) -> str:
    out = c("exec", "cloud", "-T", "api", "edgecloud", "token", "create", "--scope", "read",
            "--name", "compose-test", "--no-migrate")  # fmt: skip
    return out.strip().splitlines()[-1]


def _counts(c: Compose, token: str) -> dict[str, int]:
    r = httpx.get(
        f"http://127.0.0.1:{c.api_port}/api/v1/devices",
        headers={"Authorization": f"Bearer {token}"}, timeout=10.0,
    )  # fmt: skip
    r.raise_for_status()
    return {d["device_id"]: int(d["readings"]) for d in r.json()["items"]}


def _readings(c: Compose, token: str, device: str) -> list[dict[str, object]]:
    r = httpx.get(
        f"http://127.0.0.1:{c.api_port}/api/v1/devices/{device}/readings",
        params={"limit": 1000}, headers={"Authorization": f"Bearer {token}"}, timeout=10.0,
    )  # fmt: skip
    r.raise_for_status()
    items: list[dict[str, object]] = r.json()["items"]
    return items


def _agent_metric(c: Compose, name: str) -> float | None:
    token = (c.secrets / "agent-http-token").read_text().strip()
    r = httpx.get(
        f"http://127.0.0.1:{c.agent_port}/metrics",
        headers={"Authorization": f"Bearer {token}"}, timeout=10.0,
    )  # fmt: skip
    r.raise_for_status()
    for line in r.text.splitlines():
        if line.startswith(f"edgecloud_edge_{name} "):
            return float(line.split()[1])
    return None


def _live_threshold(c: Compose) -> None:
    """The agent's sidecar serves the edge-config store (configuration.postgresql on the
    node's Postgres): a row written there is the agent's threshold, without a restart."""
    sql = (
        "INSERT INTO dapr_configuration (key, value, version) "
        "VALUES ('edgecloud.threshold', '0.123', '1') ON CONFLICT (key) DO UPDATE "
        "SET value = EXCLUDED.value, version = EXCLUDED.version"
    )
    password = (c.secrets / "edge-db-password").read_text().strip()
    url = f"postgresql://edgecloud:{password}@127.0.0.1:5432/edge"  # TCP: the socket is peer-only
    c("exec", "edge", "-T", "postgres", "psql", url, "-v", "ON_ERROR_STOP=1", "-c", sql)
    try:
        process.wait_until(
            lambda: _agent_metric(c, "config_threshold") == 0.123, 120.0,
            "the threshold row applied through the agent's sidecar", interval=1.0,
        )  # fmt: skip
    except Exception:
        print(c.logs("edge"))
        raise


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_compose_edge_to_cloud_nothing_lost(compose: Compose) -> None:
    c = compose
    c("up", "cloud")
    c("up", "edge")
    assert (c.secrets / "node-token-edge-c1").read_text(), "no node token from the cloud compose"
    token = _read_token(c)
    devices = [f"cmp-{i}" for i in range(DEVICES)]
    for device in devices:
        _publish(c, device, range(1, PER_DEVICE + 1))
    want = {d: PER_DEVICE for d in devices}

    def all_in() -> bool:
        return _counts(c, token) == want

    try:
        process.wait_until(all_in, 240.0, "every reading in the cloud", interval=2.0)
    except Exception:
        print(c.logs("edge"), c.logs("cloud"))
        raise
    ids: set[object] = set()
    for device in devices:
        rows = _readings(c, token, device)
        assert sorted(int(str(r["seq"])) for r in rows) == list(range(1, PER_DEVICE + 1))
        ids.update(r["event_id"] for r in rows)
    assert len(ids) == DEVICES * PER_DEVICE, "event ids not unique"

    _live_threshold(c)

    # named volumes: the cloud's data survives down + up (containers removed, volumes kept)
    c("down", "cloud")
    assert not c.running("cloud")
    c("up", "cloud")
    assert _counts(c, token) == want, "cloud readings lost across down/up"
    # and the edge keeps forwarding into the restarted cloud
    _publish(c, devices[0], range(PER_DEVICE + 1, PER_DEVICE + 21))
    want[devices[0]] = PER_DEVICE + 20
    process.wait_until(all_in, 240.0, "readings after the cloud's restart", interval=2.0)

    for side in ("edge", "cloud"):
        c("down", side)
        assert not c.running(side), f"{side}: containers still running after down"
