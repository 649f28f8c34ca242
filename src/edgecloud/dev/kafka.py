"""Apache Kafka (KRaft, broker + controller in one JVM) from the cached Maven Central jars.

``<state>/kafka/server.properties`` (mode 0600: it holds the admin password) is rendered from
``deploy/kafka/server.properties.tmpl`` at every start (ports may change; the static voter list
keeps no endpoint in the log), the storage is formatted once with ``kafka.tools.StorageTool
format --cluster-id=<id> --add-scram ...`` (every principal's SCRAM-SHA-512 credential, see
``dev/kafka_auth.py``), and the broker runs as ``java -cp 'libs/*' kafka.Kafka``. Clients must
authenticate (SASL/SCRAM); ready means a metadata request as ``admin`` succeeds, after which
``start`` writes the ACLs. A storage formatted before SASL (no credentials) is formatted again.
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
from edgecloud.core.kafka import KafkaConnection
from edgecloud.dev import process
from edgecloud.dev.base import HOST, Service, repo_deploy_dir
from edgecloud.dev.kafka_auth import ADMIN, Credentials, base_grants, prefix_grants
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

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.home)

    def client(self, principal: str = ADMIN) -> KafkaConnection:
        """The connection of one principal (``dev/kafka_auth.py``), password by file (made
        now if missing, so that a client may be configured before the broker's first start)."""
        self.credentials.ensure()
        return KafkaConnection(
            self.bootstrap,
            "SASL_PLAINTEXT",
            "SCRAM-SHA-512",
            principal,
            password_file=str(self.credentials.path(principal)),
        )

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
        marker = data / ".edgecloud-scram"  # formatted with the password files of today
        if (data / "meta.properties").exists() and not (
            marker.exists() and self.credentials.complete()
        ):
            shutil.rmtree(data)  # a storage from before SASL: its topics are test data
        data.mkdir(parents=True, exist_ok=True)
        creds = self.credentials
        creds.ensure()
        template = (repo_deploy_dir() / "kafka" / "server.properties.tmpl").read_text()
        values = {
            "port": str(self.port),
            "controller_port": str(self.ports.kafka_controller),
            "data_dir": str(data),
            "admin_password": creds.password(ADMIN),
        }
        config = self.home / "server.properties"
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text(string.Template(template).substitute(values))
        if (data / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # "=" form: a random id may start with "-", which the tool's parser takes for an option.
        argv = self._java(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "-c",
            str(config),
            *creds.scram_args(),
        )
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"kafka storage format failed:\n{done.stdout}{done.stderr}")
        marker.write_text("SCRAM-SHA-512\n")

    def start(self) -> int:
        pid = super().start()
        self.apply_grants()
        return pid

    def apply_grants(self) -> None:
        """Write the ACLs of every recorded topic prefix (idempotent)."""
        from edgecloud.adapters.kafka_admin import create_acls

        grants = base_grants()
        for prefix in self.credentials.prefixes():
            grants += prefix_grants(prefix)
        create_acls(self.client(ADMIN), grants)

    def argv(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.home / "server.properties"))

    def healthy(self) -> bool:
        if not process.port_open(HOST, self.port) or not self.credentials.complete():
            return False
        from edgecloud.adapters.kafka_admin import metadata_ready

        return metadata_ready(self.client(ADMIN), timeout=3.0)
