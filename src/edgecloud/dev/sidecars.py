"""The daprd table of ``edgecloud dev up``: one sidecar beside each edge agent, the cloud API
and the cloud worker (``dev up --no-dapr``: none).

App ids: ``agent-<node>`` (app port: the agent's HTTP API, so ``/v1.0/invoke/agent-edge-1/
method/infer`` reaches its ``POST /infer``), ``cloud-api`` and ``cloud-worker``. Ports: 4 per
sidecar from ``EDGECLOUD_DEV_DAPR_PORT_BASE`` (default 8600), in table order. The apps find
their sidecar through ``EDGECLOUD_DAPR_HTTP_PORT`` / ``EDGECLOUD_DAPR_GRPC_PORT``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

from edgecloud.core.errors import ServiceError
from edgecloud.dev import apps, process, roles
from edgecloud.dev.dapr import Sidecar, SidecarPorts, SidecarSpec, daprd_errors, port_base
from edgecloud.dev.mosquitto import mqtt_connect_ok
from edgecloud.dev.stack import Infra

DAPR_MQTT_USER = "dapr-edge"


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


def sidecar_specs(infra: Infra, nodes: int) -> dict[str, SidecarSpec]:
    """App name (``apps.app_specs``) -> its sidecar."""
    base = port_base()
    cloud = {"kafka-brokers": infra.kafka_bootstrap}
    table = {
        "cloud_api": SidecarSpec(
            "cloud-api", "cloud", SidecarPorts.at(base, 0), apps.cloud_api_port(), cloud
        ),
        "cloud_worker": SidecarSpec("cloud-worker", "cloud", SidecarPorts.at(base, 1), None, cloud),
    }
    account: tuple[str, str] | None = None
    for index, node in enumerate(apps.node_ids(nodes), start=1):
        if account is None:
            account = dapr_mqtt_account(infra)
        table[f"edge_agent.{node}"] = SidecarSpec(
            f"agent-{node}",
            "edge",
            SidecarPorts.at(base, 1 + index),
            apps.agent_http_port(index),
            {
                "mqtt-url": mqtt_secret_url(infra, *account),
                # the agent reads these through its sidecar (EDGECLOUD_DAPR_SECRET_STORE)
                "mqtt-password": infra.mqtt_account("edge-agent")[1],
                "database-url": apps.service_database_url(
                    infra, roles.node_role(node), apps.node_database(node)
                ),
            },
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
            if car.side == "edge":
                env["EDGECLOUD_DAPR_SECRET_STORE"] = "local-secrets"
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
