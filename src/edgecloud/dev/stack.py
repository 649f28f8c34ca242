"""The infrastructure of the local stack: Postgres, Mosquitto and Kafka, together.

``ensure_infra(state_dir, ports)`` starts what is not running (under an ``fcntl`` lock on
``<state>/.lock``, so concurrent pytest sessions and ``dev up`` do not race) and returns an
``Infra`` with the URLs and accounts tests and apps need. A service named in ``External`` (bring
your own: an external Postgres URL, MQTT URL or Kafka bootstrap) is used as is, never started.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import make_url

from edgecloud.core.errors import ServiceError
from edgecloud.core.kafka import KafkaConnection
from edgecloud.dev import postgres
from edgecloud.dev.base import DEV_PORTS, TEST_PORTS, Ports, Service
from edgecloud.dev.kafka import KafkaService
from edgecloud.dev.kafka_auth import prefix_grants
from edgecloud.dev.mosquitto import MosquittoService
from edgecloud.dev.postgres import PostgresService

__all__ = [
    "DEV_PORTS",
    "TEST_PORTS",
    "External",
    "Infra",
    "KafkaService",
    "MosquittoService",
    "Ports",
    "PostgresService",
    "default_state_dir",
    "ensure_infra",
    "state_lock",
]


def default_state_dir(kind: str = "dev") -> Path:
    """``EDGECLOUD_STATE_DIR``, else ``~/.cache/edgecloud/<kind>`` (kind: dev or test)."""
    env = os.environ.get("EDGECLOUD_STATE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecloud" / kind


@dataclass(frozen=True)
class External:
    """Bring-your-own services; ``None`` means "start our own"."""

    postgres_url: str | None = None
    mqtt_url: str | None = None
    kafka_bootstrap: str | None = None

    @classmethod
    def from_env(cls, prefix: str) -> External:
        """``<prefix>POSTGRES_URL``, ``<prefix>MQTT_URL``, ``<prefix>KAFKA_BOOTSTRAP``."""
        return cls(
            postgres_url=os.environ.get(f"{prefix}POSTGRES_URL") or None,
            mqtt_url=os.environ.get(f"{prefix}MQTT_URL") or None,
            kafka_bootstrap=os.environ.get(f"{prefix}KAFKA_BOOTSTRAP") or None,
        )


@contextlib.contextmanager
def state_lock(state_dir: Path, name: str = ".lock") -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``<state>/<name>``, across processes."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / name, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


Notify = Callable[[str], None]


class Infra:
    """Postgres, Mosquitto and Kafka of one state dir (or the external ones)."""

    def __init__(
        self,
        state_dir: Path,
        ports: Ports,
        external: External | None = None,
        max_payload_bytes: int | None = None,  # the agents' limit; None: the environment's
    ) -> None:
        self.state_dir = state_dir
        self.ports = ports
        self.external = external or External()
        self.postgres = PostgresService(state_dir, ports)
        self.mosquitto = MosquittoService(state_dir, ports, max_payload_bytes)
        self.kafka = KafkaService(state_dir, ports)

    # --- the services we manage -------------------------------------------------------
    def managed(self) -> list[Service]:
        ext = self.external
        services: list[Service] = []
        if ext.postgres_url is None:
            services.append(self.postgres)
        if ext.mqtt_url is None:
            services.append(self.mosquitto)
        if ext.kafka_bootstrap is None:
            services.append(self.kafka)
        return services

    def ensure(self, notify: Notify | None = None) -> Infra:
        with state_lock(self.state_dir):
            for service in self.managed():
                if notify is not None and not service.running():
                    notify(service.name)
                service.start()
        return self

    def stop(self) -> None:
        with state_lock(self.state_dir):
            for service in reversed(self.managed()):
                service.stop()

    def pids(self) -> dict[str, int | None]:
        return {service.name: service.pid() for service in self.managed()}

    # --- Postgres ----------------------------------------------------------------------
    @property
    def pg_admin_url(self) -> str:
        url = self.external.postgres_url or self.postgres.admin_url
        return postgres.database_url(url, make_url(url).database or "postgres")

    def database_url(self, name: str) -> str:
        return postgres.database_url(self.pg_admin_url, name)

    def create_database(self, name: str) -> str:
        return postgres.create_database(self.pg_admin_url, name)

    def drop_database(self, name: str) -> None:
        postgres.drop_database(self.pg_admin_url, name)

    # --- MQTT ---------------------------------------------------------------------------
    @property
    def mqtt_managed(self) -> bool:
        return self.external.mqtt_url is None

    @property
    def mqtt_host(self) -> str:
        if self.external.mqtt_url:
            return urlsplit(self.external.mqtt_url).hostname or "127.0.0.1"
        return "127.0.0.1"

    @property
    def mqtt_port(self) -> int:
        if self.external.mqtt_url:
            return urlsplit(self.external.mqtt_url).port or 1883
        return self.ports.mqtt

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.mqtt_host}:{self.mqtt_port}"

    def mqtt_account(self, name: str) -> tuple[str, str]:
        """(username, password) of a stack account; an external broker has one account."""
        if self.external.mqtt_url:
            parts = urlsplit(self.external.mqtt_url)
            return unquote(parts.username or ""), unquote(parts.password or "")
        return self.mosquitto.account(name)

    def add_mqtt_user(self, username: str, password: str) -> None:
        if not self.mqtt_managed:
            raise ServiceError("an external MQTT broker's accounts are not managed by edgecloud")
        # mosquitto_passwd rewrites the whole file: serialise concurrent test sessions.
        with state_lock(self.state_dir, ".mqtt-users.lock"):
            self.mosquitto.add_user(username, password)

    def add_node_accounts(self, node_id: str) -> None:
        """Node ``node_id``'s own MQTT accounts (``agent@NODE``, ``bridge@NODE``, issue 16)."""
        if self.mqtt_managed:
            with state_lock(self.state_dir, ".mqtt-users.lock"):
                self.mosquitto.add_node(node_id)

    # --- Kafka --------------------------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return self.external.kafka_bootstrap or self.kafka.bootstrap

    def kafka_client(self, principal: str = "admin") -> KafkaConnection:
        """Connection settings of a stack principal (``dev/kafka_auth.py``: ``admin``,
        ``bridge``, ``worker``, ``dapr-cloud``, ``bench``); an external Kafka is used as its
        bootstrap servers alone, whoever asks."""
        if self.external.kafka_bootstrap:
            return KafkaConnection(self.external.kafka_bootstrap)
        return self.kafka.client(principal)

    def kafka_grant(self, prefix: str) -> None:
        """Give ``bridge``, ``worker`` and ``dapr-cloud`` the topics of a topic prefix: now if
        the broker runs, and at each later start."""
        self._kafka_prefix(prefix, granted=True)

    def kafka_revoke(self, prefix: str) -> None:
        self._kafka_prefix(prefix, granted=False)

    def _kafka_prefix(self, prefix: str, granted: bool) -> None:
        if self.external.kafka_bootstrap:
            return
        from edgecloud.adapters.kafka_admin import create_acls, delete_acls

        with state_lock(self.state_dir, ".kafka-grants.lock"):
            self.kafka.credentials.record(prefix, granted)
        if not self.kafka.running():
            return
        grants = prefix_grants(prefix)
        if granted:
            create_acls(self.kafka_client(), grants)
        else:
            delete_acls(self.kafka_client(), grants)


def ensure_infra(
    state_dir: Path,
    ports: Ports,
    external: External | None = None,
    notify: Notify | None = None,
) -> Infra:
    """Start (or reuse) the infrastructure of ``state_dir``; ``notify(name)`` before a start."""
    return Infra(state_dir, ports, external).ensure(notify)
