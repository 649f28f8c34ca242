"""Prometheus and Alertmanager of the local stack (Debian's ``prometheus`` 2.42 and
``prometheus-alertmanager``), configured from ``deploy/prometheus/`` and ``deploy/alertmanager/``.

Prometheus runs the shipped ``prometheus.yml`` and ``rules/*.yml`` from ``<state>/prometheus/``;
only the global intervals may be overridden (tests keep them short). Targets are file_sd files
in ``targets/`` and tokens files in ``tokens/``, written by ``write_targets`` whenever the stack
changes: Prometheus re-reads both without a restart. Alertmanager runs the shipped
``alertmanager.yml``, plus a webhook receiver when one is given, with clustering off.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from edgecloud.core.errors import ServiceError
from edgecloud.dev.base import HOST, Ports, Service, repo_deploy_dir

PROMETHEUS_PORT = 8490
ALERTMANAGER_PORT = 8493
TARGET_FILES = ("api", "worker", "edge", "bridge", "alertmanager", "prometheus")
TOKEN_FILES = ("api-read", "edge-metrics", "bridge-metrics")


def _port_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def prometheus_port() -> int:
    """``EDGECLOUD_DEV_PROMETHEUS_PORT`` (default 8490)."""
    return _port_env("EDGECLOUD_DEV_PROMETHEUS_PORT", PROMETHEUS_PORT)


def alertmanager_port() -> int:
    """``EDGECLOUD_DEV_ALERTMANAGER_PORT`` (default 8493)."""
    return _port_env("EDGECLOUD_DEV_ALERTMANAGER_PORT", ALERTMANAGER_PORT)


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or next(
            (str(p) for d in ("/usr/bin", "/usr/sbin") if (p := Path(d) / name).exists()), None
        )
        if found:
            return found
    return None


def prometheus_binary() -> str | None:
    return _binary("prometheus")


def alertmanager_binary() -> str | None:
    return _binary("prometheus-alertmanager", "alertmanager")


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://{HOST}:{port}/-/ready", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Atomic replace: Prometheus must never read a half-written targets file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


@dataclass
class Targets:
    """What to scrape: ``host:port`` per job; edge and bridge ones per node id."""

    api: list[str] = field(default_factory=list)
    worker: list[str] = field(default_factory=list)
    edge: dict[str, str] = field(default_factory=dict)
    bridge: dict[str, str] = field(default_factory=dict)

    def file_sd(self) -> dict[str, list[dict[str, Any]]]:
        def per_node(items: dict[str, str]) -> list[dict[str, Any]]:
            return [{"targets": [t], "labels": {"node_id": n}} for n, t in sorted(items.items())]

        return {
            "api": [{"targets": self.api, "labels": {}}] if self.api else [],
            "worker": [{"targets": self.worker, "labels": {}}] if self.worker else [],
            "edge": per_node(self.edge),
            "bridge": per_node(self.bridge),
        }


class _HttpDaemon(Service):
    """What Prometheus and Alertmanager share: an HTTP port of their own (not one of the
    stack's ``Ports``), ``<state>/<name>/`` as home, readiness by ``GET /-/ready``."""

    def __init__(self, state_dir: Path, ports: Ports, port: int) -> None:
        super().__init__(state_dir, ports)
        self._port = port

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def home(self) -> Path:
        return self.state_dir / self.name

    def healthy(self) -> bool:
        return _ready(self.port)


class PrometheusService(_HttpDaemon):
    name = "prometheus"
    ready_timeout = 60.0

    def __init__(
        self,
        state_dir: Path,
        ports: Ports,
        port: int | None = None,
        *,
        scrape_interval: str | None = None,
        evaluation_interval: str | None = None,
        rules_dir: Path | None = None,
    ) -> None:
        super().__init__(state_dir, ports, port if port is not None else prometheus_port())
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.rules_dir = rules_dir

    def prepare(self) -> None:
        if prometheus_binary() is None:
            raise ServiceError("prometheus not found (make install installs Debian's prometheus)")
        deploy = repo_deploy_dir() / "prometheus"
        config: dict[str, Any] = yaml.safe_load((deploy / "prometheus.yml").read_text())
        overrides = {
            "scrape_interval": self.scrape_interval,
            "evaluation_interval": self.evaluation_interval,
        }
        for key, value in overrides.items():
            if value is not None:
                config["global"][key] = value
        if self.scrape_interval is not None:  # the timeout may not exceed the interval
            config["global"]["scrape_timeout"] = self.scrape_interval
        for sub in ("rules", "targets", "tokens", "data"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (self.home / "tokens").chmod(0o700)
        for old in (self.home / "rules").glob("*.yml"):
            old.unlink()
        for rules in sorted((self.rules_dir or deploy / "rules").glob("*.yml")):
            shutil.copyfile(rules, self.home / "rules" / rules.name)
        _write(self.home / "prometheus.yml", yaml.safe_dump(config, sort_keys=False))
        for name in TARGET_FILES:
            path = self.home / "targets" / f"{name}.json"
            if not path.exists():
                _write(path, "[]\n")
        for name in TOKEN_FILES:
            path = self.home / "tokens" / f"{name}.token"
            if not path.exists():
                _write(path, "", 0o600)
        _write(
            self.home / "targets" / "prometheus.json",
            json.dumps([{"targets": [f"{HOST}:{self.port}"], "labels": {}}]),
        )

    def write_targets(
        self,
        targets: Targets,
        *,
        api_token: str | None = None,
        alertmanager: str | None = None,
        edge_token: str | None = None,
        bridge_token: str | None = None,
    ) -> None:
        """Point the scrape jobs (and the alerting section) at these targets; takes effect at
        Prometheus's next file_sd refresh (it watches the files)."""
        self.prepare_dirs()
        for name, groups in targets.file_sd().items():
            _write(self.home / "targets" / f"{name}.json", json.dumps(groups, indent=1))
        am = [{"targets": [alertmanager], "labels": {}}] if alertmanager else []
        _write(self.home / "targets" / "alertmanager.json", json.dumps(am))
        for name, token in (
            ("api-read", api_token),
            ("edge-metrics", edge_token),
            ("bridge-metrics", bridge_token),
        ):
            _write(self.home / "tokens" / f"{name}.token", token or "", 0o600)

    def prepare_dirs(self) -> None:
        for sub in ("targets", "tokens"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        return [
            prometheus_binary() or "prometheus",
            f"--config.file={self.home / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.home / 'data'}",
            "--storage.tsdb.retention.time=7d",
            f"--web.listen-address={HOST}:{self.port}",
        ]


class AlertmanagerService(_HttpDaemon):
    name = "alertmanager"
    ready_timeout = 30.0

    def __init__(
        self,
        state_dir: Path,
        ports: Ports,
        port: int | None = None,
        *,
        webhook_url: str | None = None,
        group_wait: str | None = None,
        group_interval: str | None = None,
    ) -> None:
        super().__init__(state_dir, ports, port if port is not None else alertmanager_port())
        self.webhook_url = webhook_url or os.environ.get("EDGECLOUD_ALERT_WEBHOOK_URL") or None
        self.group_wait = group_wait
        self.group_interval = group_interval

    def prepare(self) -> None:
        if alertmanager_binary() is None:
            raise ServiceError(
                "alertmanager not found (make install installs Debian's prometheus-alertmanager)"
            )
        shipped = repo_deploy_dir() / "alertmanager" / "alertmanager.yml"
        config: dict[str, Any] = yaml.safe_load(shipped.read_text())
        if self.group_wait is not None:
            config["route"]["group_wait"] = self.group_wait
        if self.group_interval is not None:
            config["route"]["group_interval"] = self.group_interval
        if self.webhook_url:
            receiver = next(
                r for r in config["receivers"] if r["name"] == config["route"]["receiver"]
            )
            receiver["webhook_configs"] = [{"url": self.webhook_url, "send_resolved": True}]
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        _write(self.home / "alertmanager.yml", yaml.safe_dump(config, sort_keys=False))

    def argv(self) -> list[str]:
        return [
            alertmanager_binary() or "alertmanager",
            f"--config.file={self.home / 'alertmanager.yml'}",
            f"--storage.path={self.home / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
            "--cluster.listen-address=",  # no gossip port: one instance, nothing to peer with
        ]
