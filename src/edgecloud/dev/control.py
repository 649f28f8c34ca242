"""``edgecloud dev up / down / status``: the infrastructure plus the app table, as one stack.

``<state>/stack.json`` remembers what ``up`` was asked for (node count, external services), so
that ``status`` and ``down`` describe and stop exactly that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from edgecloud.core.errors import ServiceError
from edgecloud.dev import apps, devices, kafka_auth, monitoring, process, roles, sidecars
from edgecloud.dev.base import DEV_PORTS, Ports
from edgecloud.dev.kafka_jars import jars_present
from edgecloud.dev.stack import External, Infra, ensure_infra

STARTUP_GRACE_S = 2.0  # an app still running after this is reported as started
HEALTH_TIMEOUT_S = 30.0  # then an app with a health URL must answer 200


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    nodes: int = 1
    ports: Ports = DEV_PORTS
    external: External = field(default_factory=External)
    dapr: bool = True  # a daprd beside the cloud API, the worker and each agent (--no-dapr)

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "nodes": self.nodes,
            "ports": asdict(self.ports),
            "external": asdict(self.external),
            "dapr": self.dapr,
        }
        (self.state_dir / "stack.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, state_dir: Path, external: External | None = None) -> StackConfig:
        try:
            data = json.loads((state_dir / "stack.json").read_text())
        except (OSError, ValueError):
            return cls(state_dir, external=external or External())
        return cls(
            state_dir,
            nodes=int(data.get("nodes", 1)),
            ports=Ports(**data.get("ports", asdict(DEV_PORTS))),
            external=External(**data.get("external", {})),
            dapr=bool(data.get("dapr", True)),
        )

    def infra(self) -> Infra:
        return Infra(self.state_dir, self.ports, self.external)


@dataclass
class AppReport:
    name: str
    pid: int | None
    exit_code: int | None = None
    tail: str = ""
    healthy: bool | None = None  # None: the app has no health URL (or is not running)


Step = Callable[[str], None]


def up(config: StackConfig, step: Step) -> list[AppReport]:
    """Start what is not running; ``step(text)`` announces each slow step."""
    config.save()
    if config.external.kafka_bootstrap is None and not jars_present():
        step("fetching Kafka jars from Maven Central (first run only)")
    infra = ensure_infra(
        config.state_dir,
        config.ports,
        config.external,
        notify=lambda name: step(f"starting {name}"),
    )
    for node in apps.node_ids(config.nodes):
        infra.add_node_accounts(node)  # agent@NODE, bridge@NODE (issue 16)
    step("creating databases")
    infra.create_database(apps.CLOUD_DATABASE)
    for node in apps.node_ids(config.nodes):
        infra.create_database(apps.node_database(node))
    if not infra.external.postgres_url:
        step("creating database roles and migrating")
        _own_roles(infra, config.nodes)
    elif config.dapr:  # the sidecars' edge-config component needs the nodes' tables first
        from edgecloud.edge.migrations import migrate as migrate_edge

        step("migrating the edge databases")
        for node in apps.node_ids(config.nodes):
            migrate_edge(infra.database_url(apps.node_database(node)))
    step("creating node tokens")
    apps.load_node_tokens(infra, config.nodes)
    specs = apps.app_specs(infra, config.nodes)
    if config.dapr:
        step("starting daprd sidecars")
        cars = sidecars.sidecar_specs(infra, config.nodes)
        fresh = not any(apps.AppProcess(config.state_dir, s.name).pid() for s in specs)
        try:
            sidecars.start_sidecars(config.state_dir, list(cars.values()))
        except ServiceError:
            if fresh:  # nothing half-started: a fresh `up` stops what it started
                down(config)
            raise
        specs = sidecars.with_sidecars(specs, cars)
    step("starting apps")
    started = {spec.name: apps.AppProcess(config.state_dir, spec.name) for spec in specs}
    pids = {
        name: proc.start(spec) for spec, (name, proc) in zip(specs, started.items(), strict=True)
    }
    time.sleep(STARTUP_GRACE_S)
    reports = []
    for name, proc in started.items():
        code = proc.reap(pids[name])
        if code is None and process.pid_alive(pids[name]):
            reports.append(AppReport(name, pids[name]))
        else:
            proc.pid_file.unlink(missing_ok=True)
            info = proc.exit_info() or {}
            reports.append(AppReport(name, None, code, str(info.get("tail", ""))))
    health = {spec.name: spec.health_url for spec in specs if spec.health_url}
    for report in reports:
        url = health.get(report.name)
        if report.pid is not None and url is not None:
            step(f"waiting for {report.name} health")
            report.healthy = _answers(url, HEALTH_TIMEOUT_S)
    tokens = apps.load_tokens(infra)
    if tokens and infra.mqtt_managed and devices.load(config.state_dir) is None:
        step("registering the simulated devices (one account each)")
        try:
            devices.ensure(
                infra, apps.cloud_api_url(), tokens["operate"], apps.node_ids(config.nodes)
            )
        except ServiceError as exc:  # reported like an app that did not start
            reports.append(AppReport("devices", None, None, str(exc)))
    step("starting prometheus and alertmanager")
    for problem in monitoring.ensure(
        config.state_dir, config.ports, config.nodes, (tokens or {}).get("read")
    ):
        reports.append(AppReport("prometheus", None, None, problem))
    return reports


def _own_roles(infra: Infra, nodes: int) -> None:
    """One role per service, the migrations run as the owner (``dev/roles.py``, issue 20)."""
    from edgecloud.cloud.migrations import migrate as migrate_cloud
    from edgecloud.edge.migrations import migrate as migrate_edge

    admin = infra.pg_admin_url
    roles.apply(admin, apps.service_databases(nodes))
    migrate_cloud(roles.role_url(admin, roles.MIGRATOR, apps.CLOUD_DATABASE))
    for node in apps.node_ids(nodes):
        migrate_edge(roles.role_url(admin, roles.MIGRATOR, apps.node_database(node)))


def _answers(url: str, timeout: float) -> bool:
    """True once ``url`` answers 200 within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def down(config: StackConfig) -> None:
    """Stop every app of the state dir, then the infrastructure we started."""
    run_dir = config.state_dir / "run"
    for pid_file in sorted(run_dir.glob("app-*.pid")):
        apps.AppProcess(config.state_dir, pid_file.stem.removeprefix("app-")).stop()
    sidecars.stop_sidecars(config.state_dir)
    monitoring.stop(config.state_dir, config.ports)
    config.infra().stop()


def status(config: StackConfig) -> dict[str, Any]:
    """The ``dev status --json`` object (CONTRACT section 4)."""
    infra = config.infra()
    processes: dict[str, int | None] = {"postgres": None, "mosquitto": None, "kafka": None}
    processes.update(infra.pids())
    specs = apps.app_specs(infra, config.nodes)
    for spec in specs:
        processes[spec.name] = apps.AppProcess(config.state_dir, spec.name).pid()
    processes.update(sidecars.sidecar_pids(config.state_dir))
    nodes = []
    for node in apps.node_ids(config.nodes):
        agent = next(s for s in specs if s.node_id == node and s.name.startswith("edge_agent"))
        nodes.append(
            {
                "node_id": node,
                "labels": agent.labels,
                "database_url": apps.service_database_url(
                    infra, roles.node_role(node), apps.node_database(node)
                ),
                "agent_pid": processes[agent.name],
                "bridge_pid": processes[f"bridge.{node}"],
                "health_url": agent.health_url,
            }
        )
    prom, am = monitoring.services(config.state_dir, config.ports)
    processes["prometheus"], processes["alertmanager"] = prom.pid(), am.pid()
    # the load generator's account (edgecloud bench); the simulated devices have their own
    user, password = infra.mqtt_account("simulator")
    creds = devices.load(config.state_dir)
    return {
        "mqtt_url": infra.mqtt_url,
        "kafka_bootstrap": infra.kafka_bootstrap,
        # each principal's client settings, the password by file (mode 0600), never inline
        "kafka_clients": {
            name: infra.kafka_client(name).describe() for name in kafka_auth.PRINCIPALS
        },
        "cloud_api_url": apps.cloud_api_url(),
        "cloud_database_url": apps.service_database_url(
            infra, roles.CLOUD_WORKER, apps.CLOUD_DATABASE
        ),
        "device_credentials": {"username": user, "password": password},
        "devices": [{"device_id": d, **c} for d, c in sorted((creds or {}).items())],
        "mqtt_tls": devices.tls_info(infra, creds),
        "tokens": _stored_tokens(config.state_dir),
        "nodes": nodes,
        "processes": processes,
        "prometheus_url": prom.url,
        "alertmanager_url": am.url,
    }


def exited_apps(config: StackConfig) -> dict[str, dict[str, object]]:
    """Apps that are not running, with the exit code and log tail ``dev up`` recorded."""
    infra = config.infra()
    result = {}
    for spec in apps.app_specs(infra, config.nodes):
        proc = apps.AppProcess(config.state_dir, spec.name)
        if proc.pid() is None:
            result[spec.name] = proc.exit_info() or {"code": None, "tail": "not started"}
    return result


def _stored_tokens(state_dir: Path) -> dict[str, str] | None:
    try:
        tokens: dict[str, str] = json.loads((state_dir / "tokens.json").read_text())
    except (OSError, ValueError):
        return None
    return tokens
