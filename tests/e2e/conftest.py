"""Fixtures of the e2e tests.

``docker_engine`` (session) starts the project's own dockerd (scripts/dockerd.sh: data root in
``~/.cache/edgecloud/images/docker``, never the system socket), builds or restores the images
with ``scripts/images.sh``, and stops the daemon at the end when this session started it. The
tests that use it are skipped, with the reason, only where dockerd cannot run here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_engine import SCRIPTS, DockerEngine, dockerd, why_not_here


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    reason = why_not_here()
    if reason is not None:
        pytest.skip(f"no private dockerd on this machine: {reason}")
    was_running = dockerd("status").returncode == 0
    started = dockerd("start")
    if started.returncode != 0:
        pytest.skip(f"dockerd cannot run on this machine: {started.stderr.strip()[-600:]}")
    built = subprocess.run(
        [str(SCRIPTS / "images.sh")], capture_output=True, text=True, check=False, timeout=1800
    )
    assert built.returncode == 0, f"make images failed:\n{built.stdout}{built.stderr}"
    host = dockerd("env").stdout.strip().removeprefix("export DOCKER_HOST=")
    docker = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
    yield DockerEngine({**os.environ, "DOCKER_HOST": host}, docker)
    if not was_running:
        stopped = dockerd("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert dockerd("status").returncode != 0, "the private dockerd still runs"
