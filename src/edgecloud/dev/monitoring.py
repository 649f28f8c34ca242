"""The monitoring part of ``dev up / status / down``: Prometheus scraping every app of the
stack (the cloud API with the stack's ``read`` token) and Alertmanager receiving its alerts."""

from __future__ import annotations

from pathlib import Path

from edgecloud.core.errors import ServiceError
from edgecloud.dev import apps
from edgecloud.dev.base import HOST, Ports
from edgecloud.dev.prometheus import (
    AlertmanagerService,
    PrometheusService,
    Targets,
    alertmanager_binary,
    prometheus_binary,
)


def services(state_dir: Path, ports: Ports) -> tuple[PrometheusService, AlertmanagerService]:
    return PrometheusService(state_dir, ports), AlertmanagerService(state_dir, ports)


def stack_targets(nodes: int) -> Targets:
    targets = Targets(
        api=[f"{HOST}:{apps.cloud_api_port()}"], worker=[f"{HOST}:{apps.worker_metrics_port()}"]
    )
    for index, node in enumerate(apps.node_ids(nodes), start=1):
        targets.edge[node] = f"{HOST}:{apps.agent_http_port(index)}"
        targets.bridge[node] = f"{HOST}:{apps.bridge_http_port(index)}"
    return targets


def ensure(state_dir: Path, ports: Ports, nodes: int, read_token: str | None) -> list[str]:
    """Start Alertmanager and Prometheus unless running, point Prometheus at the stack.

    Returns what could not be started (a missing binary is reported, not fatal: the rest of the
    stack runs without monitoring)."""
    prom, am = services(state_dir, ports)
    problems = []
    for name, found in (
        ("prometheus", prometheus_binary()),
        ("alertmanager", alertmanager_binary()),
    ):
        if found is None:
            problems.append(f"{name} is not installed (make install installs it)")
    if problems:
        return problems
    try:
        am.start()
        prom.prepare_dirs()
        prom.write_targets(
            stack_targets(nodes), api_token=read_token, alertmanager=f"{HOST}:{am.port}"
        )
        prom.start()
    except ServiceError as exc:
        problems.append(str(exc))
    return problems


def stop(state_dir: Path, ports: Ports) -> None:
    for service in services(state_dir, ports):
        service.stop()
