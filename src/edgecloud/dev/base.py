"""The shape shared by the local services: ports, state layout, start / stop / kill.

A service lives in ``<state>/`` (its own sub-directory), logs to ``<state>/logs/<name>.log`` and
records its pid in ``<state>/run/<name>.pid``. ``start`` is idempotent: a running, healthy
instance is reused, a stale pid file is cleared, and a port held by anything else is an error
(never silently someone else's service).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from edgecloud.core.errors import ServiceError
from edgecloud.dev import process


@dataclass(frozen=True)
class Ports:
    postgres: int
    mqtt: int
    kafka: int
    kafka_controller: int

    @classmethod
    def free(cls) -> Ports:
        """Free ports, for a private instance (fault tests, ``dev down`` test); MQTT's comes
        with the next one free too (Mosquitto's TLS listener is MQTT port + 1)."""
        return cls(
            process.free_port(),
            process.free_port_block(2),
            process.free_port(),
            process.free_port(),
        )


DEV_PORTS = Ports(postgres=15432, mqtt=11883, kafka=19092, kafka_controller=19093)
TEST_PORTS = Ports(postgres=25432, mqtt=21883, kafka=29092, kafka_controller=29093)
HOST = "127.0.0.1"


def repo_deploy_dir() -> Path:
    """``deploy/`` of the checkout (``EDGECLOUD_DEPLOY_DIR`` overrides)."""
    env = os.environ.get("EDGECLOUD_DEPLOY_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "deploy" / "mosquitto").is_dir():
            return parent / "deploy"
    raise ServiceError("cannot find deploy/ (set EDGECLOUD_DEPLOY_DIR to the checkout's deploy/)")


def create_once(path: Path, text: str) -> None:
    """Write ``path`` (mode 0600) unless it exists, atomically: the file is linked into place,
    which fails when it exists, so two processes starting on a fresh state dir at once end up
    with the same contents (the first one's)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def load_secrets(state_dir: Path) -> dict[str, Any]:
    """``<state>/secrets.json``: random passwords made once per state dir (mode 0600)."""
    path = state_dir / "secrets.json"
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    state_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "postgres": {"user": "edgecloud", "password": secrets.token_urlsafe(18)},
        "mqtt": {
            name: secrets.token_urlsafe(18)
            for name in ("admin", "edge-agent", "bridge", "simulator")
        },
    }
    create_once(path, json.dumps(data, indent=2))
    stored: dict[str, Any] = json.loads(path.read_text())
    return stored


# Linux capability numbers (linux/capability.h).
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def _bounding_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    return 0


def run_as(user: str) -> list[str]:
    """argv prefix running a daemon as ``user`` when we are root (Postgres refuses root).

    The state dir usually sits under ``/root`` (mode 0700), which ``postgres`` / ``mosquitto``
    cannot traverse. Rather than loosen ``/root``, the daemon gets the ambient capability
    CAP_DAC_READ_SEARCH (read and search only; it writes only the files it owns), or
    CAP_DAC_OVERRIDE where the container's bounding set lacks the former.
    """
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        raise ServiceError("running as root needs setpriv (util-linux) to drop to " + user)
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]
    caps = _bounding_caps()
    for number, name in (
        (_CAP_DAC_READ_SEARCH, "dac_read_search"),
        (_CAP_DAC_OVERRIDE, "dac_override"),
    ):
        if caps & (1 << number):
            return [*prefix, f"--inh-caps=+{name}", f"--ambient-caps=+{name}"]
    return prefix


def chown_tree(path: Path, user: str) -> None:
    """Give ``path`` (recursively) to ``user`` when we are root; no-op otherwise."""
    if os.geteuid() != 0:
        return
    for item in [path, *path.rglob("*")]:
        shutil.chown(item, user=user, group=user)


class Service(ABC):
    """One local daemon. Subclasses give ``argv``, ``prepare`` and ``healthy``."""

    name: ClassVar[str]
    stop_signal: ClassVar[int] = signal.SIGTERM
    ready_timeout: ClassVar[float] = 60.0
    stop_timeout: ClassVar[float] = 20.0

    def __init__(self, state_dir: Path, ports: Ports) -> None:
        self.state_dir = state_dir
        self.ports = ports
        self.secrets = load_secrets(state_dir)

    @property
    @abstractmethod
    def port(self) -> int: ...

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "run" / f"{self.name}.pid"

    @abstractmethod
    def prepare(self) -> None:
        """Create config and data on disk (first start: initdb, storage format...)."""

    @abstractmethod
    def argv(self) -> list[str]: ...

    @abstractmethod
    def healthy(self) -> bool:
        """A real request succeeds (SQL query, MQTT CONNACK, Kafka metadata)."""

    def env(self) -> dict[str, str] | None:
        return None

    def pid(self) -> int | None:
        # Every service's command line names a file in its state dir.
        return process.read_pid(self.pid_file, marker=str(self.state_dir))

    def running(self) -> bool:
        return self.pid() is not None and self.healthy()

    def start(self) -> int:
        """Start unless already running and healthy; returns the pid."""
        pid = self.pid()
        if pid is not None:
            try:
                self.wait_ready(pid, timeout=min(self.ready_timeout, 30.0))
                return pid
            except ServiceError:
                self.stop()
        if process.port_open(HOST, self.port):
            raise ServiceError(
                f"{self.name}: port {self.port} is in use by a process this stack did not start"
            )
        self.prepare()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "a") as log:
            log.write(f"\n--- edgecloud: starting {self.name} at {time.strftime('%c')}\n")
        pid = process.spawn(self.argv(), self.log_file, env=self.env())
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(f"{pid}\n")
        self.wait_ready(pid, timeout=self.ready_timeout)
        return pid

    def wait_ready(self, pid: int, timeout: float) -> None:
        def died() -> str | None:
            if process.pid_alive(pid):
                return None
            return f"exited during start; last log lines:\n{process.tail(self.log_file)}"

        process.wait_until(self.healthy, timeout, f"{self.name} (pid {pid})", abort=died)

    def stop(self) -> None:
        """Signal, wait, SIGKILL if needed; afterwards neither process nor port remain."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        process.terminate(pid, self.stop_signal, self.stop_timeout)
        self.pid_file.unlink(missing_ok=True)
        process.wait_until(
            lambda: not process.port_open(HOST, self.port), 10.0, f"{self.name} port release"
        )

    def kill(self) -> None:
        """kill -9, for fault tests; the pid file stays so ``start`` cleans up after it."""
        pid = self.pid()
        if pid is not None:
            process.kill(pid)
