"""A fleet for the rollout end-to-end tests: the real cloud API process (``edgecloud cloud
api``) on Postgres, and real edge agents (``edgecloud edge run``, one process each, own
database) on the stack's Mosquitto, fed live readings by a device thread.

Node heartbeats normally reach the cloud's ``nodes`` table through bridge -> Kafka -> worker;
here the nodes are registered in that table directly (what the worker would write), and the
agents report ``model_status`` over the API's fallback route (``EDGECLOUD_MODEL_STATUS_VIA``),
so these tests need no Kafka.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from edgecloud.adapters.mqtt import MqttConfig, make_publisher
from edgecloud.cloud import auth
from edgecloud.cloud.db import Node, make_engine
from edgecloud.core.archive import pack_folder
from edgecloud.core.signing import generate_key, public_key_b64
from edgecloud.dev.stack import Infra
from edgecloud.testing.edge_process import AgentProcess, cli, free_port


@dataclass
class Cloud:
    url: str
    db_url: str
    store: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    log_file: Any = None
    tokens: dict[str, str] = field(default_factory=dict)

    def start(self) -> Cloud:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECLOUD_")}
        env.update(
            {
                "EDGECLOUD_DATABASE_URL": self.db_url,
                "EDGECLOUD_REGISTRY_DIR": str(self.store),
                "EDGECLOUD_ROLLOUT_TICK_S": "0.2",
                "EDGECLOUD_LOG_FORMAT": "json",
            }
        )
        port = self.url.rsplit(":", 1)[1]
        self.log_file = self.log.open("ab")
        self.proc = subprocess.Popen(
            [*cli(), "cloud", "api", "--port", port, "--no-access-log"],
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text()[-3000:])
            time.sleep(0.2)
        raise TimeoutError(self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self._close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None

    def call(self, method: str, path: str, scope: str = "operate", **kw: Any) -> Any:
        res = httpx.request(
            method,
            self.url + path,
            timeout=30,
            headers={"Authorization": f"Bearer {self.tokens[scope]}"},
            **kw,
        )
        assert res.status_code < 300, res.text
        return res.json()

    def push(self, folder: Path) -> dict[str, Any]:
        body: dict[str, Any] = self.call(
            "POST", "/api/v1/models", files={"bundle": ("b.tar.gz", pack_folder(folder))}
        )
        return body

    def rollout(
        self, model: str, selector: dict[str, str], waves: list[int], **gates: float
    ) -> str:
        body = {"model": model, "selector": selector, "waves": waves, "gates": gates}
        return str(self.call("POST", "/api/v1/rollouts", json=body)["id"])

    def status(self, rid: str) -> dict[str, Any]:
        out: dict[str, Any] = self.call("GET", f"/api/v1/rollouts/{rid}", "read")
        return out

    def wait_final(self, rid: str, timeout_s: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            st = self.status(rid)
            if st["state"] in ("succeeded", "failed", "aborted"):
                return st
            time.sleep(0.3)
        raise TimeoutError(json.dumps(self.status(rid), indent=1)[:4000])


class Devices:
    """One thread publishing a reading per device every ``period_s`` (QoS 1)."""

    def __init__(self, stack: Infra, devices: list[str], period_s: float = 0.05) -> None:
        user, pw = stack.mqtt_account("admin")
        self.pub = make_publisher(
            MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port, username=user, password=pw)
        )
        self.devices = devices
        self.period_s = period_s
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Devices:
        self.pub.start()
        self.thread.start()
        return self

    def _run(self) -> None:
        seq = int(time.time() * 1000)
        while not self.stop_event.is_set():
            seq += 1
            for i, d in enumerate(self.devices):
                values = {
                    "temperature": 60.0 + (seq + i) % 30,
                    "vibration_rms": 0.3 + (seq % 7) / 10,
                    "pressure": 3.0 + (seq % 5) / 10,
                }
                body = {"device_id": d, "seq": seq, "ts": time.time(), "values": values}
                self.pub.publish(f"devices/{d}/telemetry", json.dumps(body))
            self.stop_event.wait(self.period_s)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)
        self.pub.stop()


@dataclass
class Fleet:
    stack: Infra
    cloud: Cloud
    tmp: Path
    key: Ed25519PrivateKey
    tag: str
    agents: dict[str, AgentProcess] = field(default_factory=dict)
    node_tokens: dict[str, str] = field(default_factory=dict)
    trusted: str = ""
    databases: list[str] = field(default_factory=list)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)

    def add_node(self, node_id: str, labels: dict[str, str], model: Path | None) -> AgentProcess:
        engine = make_engine(self.cloud.db_url)
        with Session(engine) as s:
            s.add(Node(node_id=node_id, labels=labels, last_heartbeat=datetime.now(UTC)))
            s.commit()
            self.node_tokens[node_id], _ = auth.create_token(s, "node", node_id, node_id)
        engine.dispose()
        self.labels[node_id] = labels  # the agent's heartbeats say the same (a worker stores them)
        name = f"e_{self.tag}_{node_id.replace('-', '_')}"
        self.databases.append(name)
        db = self.stack.create_database(name)
        return self.start_agent(node_id, db, model)

    def start_agent(self, node_id: str, db_url: str, model: Path | None) -> AgentProcess:
        user, pw = self.stack.mqtt_account("edge-agent")
        env = {
            "EDGECLOUD_CLOUD_API_URL": self.cloud.url,
            "EDGECLOUD_NODE_TOKEN": self.node_tokens[node_id],
            "EDGECLOUD_OPERATOR_PUBLIC_KEYS": self.trusted or public_key_b64(self.key),
            "EDGECLOUD_MODEL_STORE_DIR": str(self.tmp / "nodes" / node_id),
            "EDGECLOUD_MODEL_STATUS_VIA": "http",
            "EDGECLOUD_DESIRED_WAIT_S": "10",
            "EDGECLOUD_DESIRED_RETRY_S": "0.5",
            "EDGECLOUD_HEARTBEAT_INTERVAL_S": "2",
            "EDGECLOUD_BATCH_WINDOW_MS": "5",
            "EDGECLOUD_NODE_LABELS": ",".join(
                f"{k}={v}" for k, v in self.labels.get(node_id, {}).items()
            ),
        }
        agent = AgentProcess(
            node_id=node_id,
            database_url=db_url,
            mqtt_url=self.stack.mqtt_url,
            mqtt_username=user,
            mqtt_password=pw,
            log_path=self.tmp / "logs" / f"{node_id}-{uuid.uuid4().hex[:4]}.log",
            model=str(model) if model else None,
            extra_env=env,
        )
        agent.database_url = db_url  # type: ignore[attr-defined]
        self.agents[node_id] = agent.start()
        return agent

    def serving(self, node_id: str) -> str | None:
        m = self.agents[node_id].health()["model"]
        return f"{m['name']}:{m['version']}" if m["name"] else None

    def wait_serving(self, node_id: str, ref: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.serving(node_id) == ref:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{node_id} serves {self.serving(node_id)}, not {ref}")

    def stop(self) -> None:
        for a in self.agents.values():
            a.stop()
        self.cloud.stop()
        for name in self.databases:
            self.stack.drop_database(name)


def make_fleet(stack: Infra, tmp: Path) -> Fleet:
    tag = uuid.uuid4().hex[:6]
    db = stack.create_database(f"e_{tag}_cloud")
    cloud = Cloud(
        f"http://127.0.0.1:{free_port()}", db, tmp / "registry", tmp / "cloud.log"
    ).start()
    engine = make_engine(db)
    with Session(engine) as s:
        for scope in ("read", "operate", "admin"):
            cloud.tokens[scope], _ = auth.create_token(s, scope, scope)  # type: ignore[arg-type]
    engine.dispose()
    key = generate_key()
    cloud.call("POST", "/api/v1/operator-keys", "admin", json={"public_key": public_key_b64(key)})
    return Fleet(stack, cloud, tmp, key, tag, databases=[f"e_{tag}_cloud"])
