"""daprd sidecars of the local stack: one beside each edge agent, the cloud API and the worker.

The binary is the one ``scripts/build-daprd.sh`` (``make install``) builds from the Go module
``github.com/dapr/dapr`` into ``~/.cache/edgecloud/dapr/<version>/daprd``
(``EDGECLOUD_DAPRD`` names another). Self-hosted mode, no placement / scheduler / sentry (no
address given: daprd runs without them); the building blocks used here need none.

Each sidecar runs in ``<state>/dapr/<app-id>/`` (its working directory), where its
``secrets.json`` lives: the components in ``deploy/dapr/edge`` and ``deploy/dapr/cloud`` are
the same files compose uses, and take every deployment-specific value (broker URL and account,
Kafka brokers) from the ``local-secrets`` store (``secretsFile: secrets.json``, relative to the
working directory). A component daprd cannot load makes it exit with the error in its log:
``start`` raises it with the log tail.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from edgecloud.core.errors import ServiceError
from edgecloud.dev import process
from edgecloud.dev.base import repo_deploy_dir

DAPR_VERSION = "1.14.0"
DAPR_PORT_BASE = 8600  # dev default; 4 ports per sidecar (http, grpc, internal grpc, metrics)
READY_TIMEOUT_S = 60.0
# The sidecar's Configuration resource (--config; its path in the command line is also how a
# pid file's process is recognised as ours).
CONFIGURATION = """apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: edgecloud
spec:
  metric:
    enabled: true
"""


def daprd_binary() -> Path:
    env = os.environ.get("EDGECLOUD_DAPRD")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "edgecloud" / "dapr" / DAPR_VERSION / "daprd"


def daprd_present() -> bool:
    binary = daprd_binary()
    return binary.is_file() and os.access(binary, os.X_OK)


def port_base() -> int:
    value = os.environ.get("EDGECLOUD_DEV_DAPR_PORT_BASE")
    return int(value) if value else DAPR_PORT_BASE


@dataclass(frozen=True)
class SidecarPorts:
    http: int
    grpc: int
    internal_grpc: int
    metrics: int

    @classmethod
    def at(cls, base: int, index: int) -> SidecarPorts:
        first = base + 4 * index
        return cls(first, first + 1, first + 2, first + 3)

    @classmethod
    def free(cls) -> SidecarPorts:
        free = process.free_port
        return cls(free(), free(), free(), free())


@dataclass(frozen=True)
class SidecarSpec:
    app_id: str
    side: str  # "edge" or "cloud": which component folder of deploy/dapr
    ports: SidecarPorts
    app_port: int | None = None
    secrets: dict[str, str] = field(default_factory=dict)  # -> secrets.json (local-secrets)
    resources: tuple[Path, ...] = ()  # extra component folders (a user's own components)
    env: dict[str, str] = field(default_factory=dict)  # daprd's own (APP_API_TOKEN)

    @property
    def name(self) -> str:
        """Key in ``dev status --json`` "processes"."""
        return f"daprd.{self.app_id}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    def app_env(self) -> dict[str, str]:
        """What the app beside it needs to find it (the SDK's own variable names)."""
        return {"DAPR_HTTP_PORT": str(self.ports.http), "DAPR_GRPC_PORT": str(self.ports.grpc)}


def components_dir(side: str) -> Path:
    return repo_deploy_dir() / "dapr" / side


class Sidecar:
    """One daprd: pid ``run/daprd.<app-id>.pid``, log ``logs/daprd.<app-id>.log``."""

    def __init__(self, state_dir: Path, spec: SidecarSpec) -> None:
        self.spec = spec
        self.home = state_dir / "dapr" / spec.app_id
        self.pid_file = state_dir / "run" / f"{spec.name}.pid"
        self.log_file = state_dir / "logs" / f"{spec.name}.log"

    def pid(self) -> int | None:
        return process.read_pid(self.pid_file, marker=str(self.home))

    def argv(self) -> list[str]:
        s, p = self.spec, self.spec.ports
        daprd = [
            str(daprd_binary()), "--mode", "standalone", "--app-id", s.app_id,
            "--dapr-listen-addresses", "127.0.0.1", "--dapr-http-port", str(p.http),
            "--dapr-grpc-port", str(p.grpc), "--dapr-internal-grpc-port", str(p.internal_grpc),
            "--metrics-port", str(p.metrics), "--resources-path", str(components_dir(s.side)),
            "--config", str(self.home / "config.yaml"), "--log-as-json",
        ]  # fmt: skip
        for extra in s.resources:
            daprd += ["--resources-path", str(extra)]
        if s.app_port is not None:
            daprd += ["--app-port", str(s.app_port), "--app-protocol", "http"]
        # daprd has no working-directory flag; secretsFile is relative to it
        return ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(self.home), *daprd]

    def prepare(self) -> None:
        if not daprd_present():
            raise ServiceError(
                f"daprd not found at {daprd_binary()} (make install builds it; "
                "dev up --no-dapr runs without Dapr)"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        (self.home / "config.yaml").write_text(CONFIGURATION)
        path = self.home / "secrets.json"
        path.write_text(json.dumps(self.spec.secrets, indent=2))
        path.chmod(0o600)

    def ready(self) -> bool:
        """Components loaded and the API up (``healthz/outbound``: not waiting for the app)."""
        try:
            r = httpx.get(f"{self.spec.http_url}/v1.0/healthz/outbound", timeout=2.0)
        except httpx.HTTPError:
            return False
        return r.status_code < 300

    def start(self) -> int:
        pid = self.pid()
        if pid is not None:
            return pid
        for port in (self.spec.ports.http, self.spec.ports.grpc):
            if process.port_open("127.0.0.1", port):
                raise ServiceError(f"{self.spec.name}: port {port} is in use")
        self.prepare()
        env = {**os.environ, **self.spec.env} if self.spec.env else None
        pid = process.spawn(self.argv(), self.log_file, env)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def wait_ready(self, pid: int, timeout: float = READY_TIMEOUT_S) -> None:
        def died() -> str | None:
            if process.pid_alive(pid):
                return None
            self.pid_file.unlink(missing_ok=True)
            return f"daprd exited during start:\n{daprd_errors(self.log_file)}"

        process.wait_until(self.ready, timeout, self.spec.name, abort=died)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            process.terminate(pid, signal.SIGTERM, timeout=15.0)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """kill -9 (fault tests); the pid file stays, ``start`` sees the process gone."""
        pid = self.pid()
        if pid is not None:
            process.kill(pid)


def daprd_errors(log_file: Path, lines: int = 6) -> str:
    """The error / fatal lines of a daprd JSON log (its ``msg``), else the log's tail."""
    found = []
    for line in process.tail(log_file, 200).splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            found.append(str(entry.get("msg", line)))
    return "\n".join(found[-lines:]) or process.tail(log_file, lines)
