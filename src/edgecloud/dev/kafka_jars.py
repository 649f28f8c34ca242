"""Kafka broker jars from Maven Central, cached in ``~/.cache/edgecloud/kafka/<v>/libs``.

``deploy/kafka/pom.xml`` names the broker (``kafka_2.13``, which also holds
``kafka.tools.StorageTool``) and its log4j2 binding; ``mvn dependency:copy-dependencies``
copies the runtime closure. A ``.complete`` stamp marks a finished fetch, so a warm call is a
stat. ``python -m edgecloud.dev.kafka_jars`` is what ``make install`` runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from edgecloud.core.errors import ServiceError
from edgecloud.dev.base import repo_deploy_dir

KAFKA_VERSION = "4.1.0"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecloud" / "kafka"


def libs_dir(version: str = KAFKA_VERSION) -> Path:
    return cache_root() / version / "libs"


def jars_present(version: str = KAFKA_VERSION) -> bool:
    return (libs_dir(version) / ".complete").exists()


def ensure_jars(version: str = KAFKA_VERSION) -> Path:
    """Fetch the jars unless cached; returns the libs directory."""
    libs = libs_dir(version)
    if jars_present(version):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError("maven (mvn) is needed once to fetch the Kafka jars: run make install")
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    argv = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(repo_deploy_dir() / "kafka" / "pom.xml"),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not any(staging.glob(f"kafka_2.13-{version}.jar")):
        raise ServiceError(f"fetching Kafka {version} jars failed:\n{done.stdout}{done.stderr}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    (libs / ".complete").write_text(version + "\n")
    return libs


def main() -> None:
    cached = jars_present()
    libs = ensure_jars()
    state = "cached" if cached else "fetched"
    sys.stdout.write(f"kafka {KAFKA_VERSION} jars {state} in {libs}\n")


if __name__ == "__main__":
    main()
