"""The project's own Docker engine (scripts/dockerd.sh) as the image and compose tests see it;
the ``docker_engine`` fixture is in conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


@dataclass(frozen=True)
class DockerEngine:
    env: dict[str, str]  # os.environ plus DOCKER_HOST (the private socket)
    docker: str  # the client binary

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.docker, *args], env=self.env, capture_output=True, text=True, check=check
        )


def dockerd(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / "dockerd.sh"), action], capture_output=True, text=True, check=False
    )


def why_not_here() -> str | None:
    """Why dockerd cannot run on this machine (None: it can, or it is already running)."""
    if dockerd("status").returncode == 0:
        return None
    for tool in ("dockerd", "docker-compose", "debootstrap", "mosquitto_pub"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed (make install installs it)"
    if os.geteuid() != 0:
        return "dockerd needs root, and this session is not root"
    return None
