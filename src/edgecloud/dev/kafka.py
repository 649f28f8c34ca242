"""Apache Kafka (KRaft, broker + controller in one JVM) from the cached Maven Central jars.

``<state>/kafka/server.properties`` is rendered from ``deploy/kafka/server.properties.tmpl``
at every start (ports may change; the static voter list keeps no endpoint in the log), the
storage is formatted once with ``kafka.tools.StorageTool format -t <cluster id>``, and the
broker runs as ``java -cp 'libs/*' kafka.Kafka``. Ready means a metadata request succeeds.
"""

from __future__ import annotations

import base64
import os
import shutil
import string
import subprocess
import uuid
from pathlib import Path

from edgecloud.core.errors import ServiceError
from edgecloud.dev import process
from edgecloud.dev.base import HOST, Service, repo_deploy_dir
from edgecloud.dev.kafka_jars import ensure_jars

JVM_OPTS = [
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
]


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise ServiceError("java (JDK >= 17) not found: run make install")
    return found


class KafkaService(Service):
    name = "kafka"
    ready_timeout = 120.0
    stop_timeout = 30.0

    @property
    def port(self) -> int:
        return self.ports.kafka

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def home(self) -> Path:
        return self.state_dir / "kafka"

    def _java(self, main: str, *args: str) -> list[str]:
        libs = ensure_jars()
        log4j = repo_deploy_dir() / "kafka" / "log4j2.xml"
        return [
            java_binary(),
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def prepare(self) -> None:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        template = (repo_deploy_dir() / "kafka" / "server.properties.tmpl").read_text()
        values = {
            "port": str(self.port),
            "controller_port": str(self.ports.kafka_controller),
            "data_dir": str(data),
        }
        config = self.home / "server.properties"
        config.write_text(string.Template(template).substitute(values))
        if (data / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # "=" form: a random id may start with "-", which the tool's parser takes for an option.
        argv = self._java(
            "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config)
        )
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"kafka storage format failed:\n{done.stdout}{done.stderr}")

    def argv(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.home / "server.properties"))

    def healthy(self) -> bool:
        if not process.port_open(HOST, self.port):
            return False
        from edgecloud.adapters.kafka_admin import metadata_ready

        return metadata_ready(self.bootstrap, timeout=3.0)
