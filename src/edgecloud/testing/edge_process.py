"""Run ``edgecloud edge run`` as a child process: for ``edgecloud bench edge`` and the tests.

The agent is started through the real CLI (same settings path as production); the harness
only builds its environment, waits for ``/healthz`` and reads its memory from ``/proc``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli() -> list[str]:
    beside = Path(sys.executable).parent / "edgecloud"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "from edgecloud.cli import main; main()"]


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MiB (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def get_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def post(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class AgentProcess:
    def __init__(
        self,
        *,
        node_id: str,
        database_url: str,
        mqtt_url: str,
        mqtt_username: str | None,
        mqtt_password: str | None,
        log_path: Path,
        model: str | None = None,
        extra_env: dict[str, str] | None = None,
        http_port: int | None = None,
    ) -> None:
        self.node_id = node_id
        self.http_port = http_port or free_port()
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECLOUD_")}
        env.update(
            {
                "EDGECLOUD_NODE_ID": node_id,
                "EDGECLOUD_DATABASE_URL": database_url,
                "EDGECLOUD_MQTT_URL": mqtt_url,
                "EDGECLOUD_HTTP_PORT": str(self.http_port),
                "EDGECLOUD_LOG_FORMAT": "json",
            }
        )
        if mqtt_username:
            env["EDGECLOUD_MQTT_USERNAME"] = mqtt_username
            env["EDGECLOUD_MQTT_PASSWORD"] = mqtt_password or ""
        if model:
            env["EDGECLOUD_MODEL"] = model
        env.update(extra_env or {})
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, wait_s: float = 60.0) -> AgentProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*cli(), "edge", "run"], env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.wait_healthy(wait_s)
        return self

    def wait_healthy(self, wait_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}: {self.tail()}")
            try:
                code, body = get_json(self.url + "/healthz", 2.0)
                if code == 200:
                    return dict(body)
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"agent not healthy after {wait_s}s: {self.tail()}")

    def health(self) -> dict[str, Any]:
        return dict(get_json(self.url + "/healthz")[1])

    def counters(self) -> dict[str, int]:
        return dict(self.health()["counters"])

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (the crash test)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()
        return int(self.proc.returncode)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
