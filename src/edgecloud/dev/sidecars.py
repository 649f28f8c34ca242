"""The daprd table of ``edgecloud dev up``: one sidecar beside each edge agent, the cloud API
and the cloud worker (``dev up --no-dapr``: none).

App ids: ``agent-<node>`` (app port: the agent's HTTP API, so ``/v1.0/invoke/agent-edge-1/
method/infer`` reaches its ``POST /infer``), ``cloud-api`` and ``cloud-worker``. Ports: 4 per
sidecar from ``EDGECLOUD_DEV_DAPR_PORT_BASE`` (default 8600), in table order. The apps find
their sidecar through ``EDGECLOUD_DAPR_HTTP_PORT`` / ``EDGECLOUD_DAPR_GRPC_PORT``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

from edgecloud.core.errors import ServiceError
from edgecloud.dev import apps, postgres, process, roles
from edgecloud.dev.dapr import (
    Sidecar,
    SidecarPorts,
    SidecarSpec,
    components_dir,
    daprd_errors,
    port_base,
)
from edgecloud.dev.mosquitto import mqtt_connect_ok
from edgecloud.dev.stack import Infra

DAPR_MQTT_USER = "dapr-edge"
CONFIG_STORE = "edge-config"  # deploy/dapr/edge-config: the agents' live configuration
NO_WEBHOOK = "http://127.0.0.1:9/alerts"  # alert-webhook's URL until one is given (discard port)


def dapr_mqtt_account(infra: Infra) -> tuple[str, str]:
    """The broker account of the edge sidecars' ``pubsub.mqtt3`` (made once per state dir)."""
    if not infra.mqtt_managed:
        return infra.mqtt_account("admin")
    path = infra.state_dir / "dapr" / "mqtt-account.json"
    try:
        password = str(json.loads(path.read_text())["password"])
    except (OSError, ValueError, KeyError):
        password = secrets.token_urlsafe(18)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"username": DAPR_MQTT_USER, "password": password}))
        path.chmod(0o600)
    if not mqtt_connect_ok(infra.mqtt_host, infra.mqtt_port, DAPR_MQTT_USER, password):
        infra.add_mqtt_user(DAPR_MQTT_USER, password)
    return DAPR_MQTT_USER, password


def mqtt_secret_url(infra: Infra, username: str, password: str) -> str:
    """``tcp://user:password@host:port``: the ``mqtt-url`` secret of ``pubsub.mqtt3``."""
    return f"tcp://{quote(username)}:{quote(password)}@{infra.mqtt_host}:{infra.mqtt_port}"


def kafka_secrets(infra: Infra) -> dict[str, str]:
    """The Kafka connection of ``cloud-pubsub`` (``pubsub.kafka``) as its secrets: brokers and
    the SASL/SCRAM account of the ``dapr-cloud`` principal (``dev/kafka_auth.py``)."""
    conn = infra.kafka_client("dapr-cloud")
    if not conn.sasl:
        return {
            "kafka-brokers": conn.bootstrap,
            "kafka-auth-type": "none",
            "kafka-sasl-username": "",
            "kafka-sasl-password": "",
            "kafka-sasl-mechanism": "SHA-512",
        }
    return {
        "kafka-brokers": conn.bootstrap,
        "kafka-auth-type": "password",
        "kafka-sasl-username": conn.username or "",
        "kafka-sasl-password": conn.secret(),
        "kafka-sasl-mechanism": conn.sasl_mechanism.removeprefix("SCRAM-"),
    }


def cloud_secrets(infra: Infra, role: str) -> dict[str, str]:
    """``secrets.json`` of a cloud sidecar: the components' values and the app's own settings
    (``database-url``; ``openai-api-key`` when this shell has one)."""
    values = {
        **kafka_secrets(infra),
        "alert-webhook-url": os.environ.get("EDGECLOUD_DEV_ALERT_WEBHOOK_URL", NO_WEBHOOK),
        "database-url": apps.service_database_url(infra, role, apps.CLOUD_DATABASE),
    }
    if os.environ.get("OPENAI_API_KEY"):
        values["openai-api-key"] = os.environ["OPENAI_API_KEY"]
    return values


def app_token(infra: Infra) -> str:
    """The token daprd sends to the cloud API with input bindings (made once per state dir)."""
    path = infra.state_dir / "dapr" / "app-token"
    try:
        token = path.read_text().strip()
    except OSError:
        token = ""
    if len(token) < 16:
        token = secrets.token_urlsafe(24)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token)
        path.chmod(0o600)
    return token


def sidecar_specs(infra: Infra, nodes: int) -> dict[str, SidecarSpec]:
    """App name (``apps.app_specs``) -> its sidecar."""
    base = port_base()
    api_env = {"APP_API_TOKEN": app_token(infra)}
    table = {
        "cloud_api": SidecarSpec(
            "cloud-api", "cloud", SidecarPorts.at(base, 0), apps.cloud_api_port(),
            cloud_secrets(infra, roles.CLOUD_API), env=api_env,
        ),
        "cloud_worker": SidecarSpec(
            "cloud-worker", "cloud", SidecarPorts.at(base, 1), None,
            cloud_secrets(infra, roles.CLOUD_WORKER),
        ),
    }  # fmt: skip
    account: tuple[str, str] | None = None
    node_tokens = apps.load_node_tokens(infra, nodes) if nodes else {}
    for index, node in enumerate(apps.node_ids(nodes), start=1):
        if account is None:
            account = dapr_mqtt_account(infra)
        database_url = apps.service_database_url(
            infra, roles.node_role(node), apps.node_database(node)
        )
        table[f"edge_agent.{node}"] = SidecarSpec(
            f"agent-{node}",
            "edge",
            SidecarPorts.at(base, 1 + index),
            apps.agent_http_port(index),
            {
                "mqtt-url": mqtt_secret_url(infra, *account),
                # the agent reads these through its sidecar (EDGECLOUD_DAPR_SECRET_STORE)
                "mqtt-password": apps.agent_mqtt_account(infra, node)[1],
                "database-url": database_url,
                # edge-config (configuration.postgresql): the same database, libpq form
                "config-connection-string": postgres.libpq_url(database_url),
                **({"node-token": node_tokens[node]} if node in node_tokens else {}),
            },
            # its table exists once the node's database is migrated (dev up does that first)
            resources=(components_dir("edge-config"),),
        )
    return table


def with_sidecars(
    specs: list[apps.AppSpec], sidecars: dict[str, SidecarSpec]
) -> list[apps.AppSpec]:
    """The app specs with their sidecar's ports in the environment."""
    out = []
    for spec in specs:
        car = sidecars.get(spec.name)
        if car is not None:
            env = {
                **spec.env,
                "EDGECLOUD_DAPR_HTTP_PORT": str(car.ports.http),
                "EDGECLOUD_DAPR_GRPC_PORT": str(car.ports.grpc),
            }
            env["EDGECLOUD_DAPR_SECRET_STORE"] = "local-secrets"
            if components_dir("edge-config") in car.resources:
                env["EDGECLOUD_DAPR_CONFIG_STORE"] = CONFIG_STORE
            if "APP_API_TOKEN" in car.env:
                env["EDGECLOUD_DAPR_APP_TOKEN"] = car.env["APP_API_TOKEN"]
            spec = replace(spec, env=env)
        out.append(spec)
    return out


def start_sidecars(state_dir: Path, sidecars: list[SidecarSpec]) -> dict[str, int]:
    """Start every sidecar and wait until each has loaded its components.

    A daprd that exits (a component it cannot load, a port taken) stops the ones started
    here and raises ``ServiceError`` with its error lines: nothing is left half-started.
    """
    cars = [Sidecar(state_dir, spec) for spec in sidecars]
    started: list[Sidecar] = []
    pids: dict[str, int] = {}
    try:
        for car in cars:
            running = car.pid()
            pid = car.start()
            if running is None:
                started.append(car)
            pids[car.spec.name] = pid
        for car in cars:
            car.wait_ready(pids[car.spec.name])
    except ServiceError as exc:
        for car in started:
            car.stop()
        raise ServiceError(f"{exc}") from exc
    return pids


def sidecar_pids(state_dir: Path) -> dict[str, int | None]:
    """``daprd.<app-id>`` -> pid, for every sidecar pid file of the state dir."""
    result: dict[str, int | None] = {}
    for pid_file in sorted((state_dir / "run").glob("daprd.*.pid")):
        app_id = pid_file.stem.removeprefix("daprd.")
        result[pid_file.stem] = process.read_pid(pid_file, marker=str(state_dir / "dapr" / app_id))
    return result


def stop_sidecars(state_dir: Path) -> None:
    for pid_file in sorted((state_dir / "run").glob("daprd.*.pid")):
        app_id = pid_file.stem.removeprefix("daprd.")
        pid = process.read_pid(pid_file, marker=str(state_dir / "dapr" / app_id))
        if pid is not None:
            process.terminate(pid, timeout=15.0)
        pid_file.unlink(missing_ok=True)


__all__ = ["daprd_errors", "sidecar_specs", "start_sidecars", "stop_sidecars", "with_sidecars"]
