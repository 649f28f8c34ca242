"""``KafkaConnection``: the one place a Kafka client's connection settings come from.

Every client (the bridge's producer, the worker's consumer, admin calls, benches, tests) is
built from ``KafkaConnection.client_config()``: bootstrap servers, security protocol, SASL
mechanism, user and password, then the librdkafka pass-through (``EDGECLOUD_KAFKA_CONFIG``).
A role gets it from ``KafkaSettings.kafka_connection()``; the local stack from
``Infra.kafka_client(principal)``; a child process from ``KafkaConnection.env()``.

The password is read from ``password_file`` at each ``client_config()`` when one is named (the
local stack keeps one file per principal, mode 0600), so it never sits in an environment
variable or a log line; ``describe()`` shows everything but the password.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgecloud.core.errors import ConfigError

SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", *SASL_PROTOCOLS)
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True)
class KafkaConnection:
    """Where a Kafka cluster is and who we are on it."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise ConfigError("kafka bootstrap servers are empty")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"kafka security protocol {self.security_protocol!r} is not one of "
                f"{', '.join(SECURITY_PROTOCOLS)}"
            )
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                f"kafka SASL mechanism {self.sasl_mechanism!r} is not one of "
                f"{', '.join(SASL_MECHANISMS)}"
            )
        if self.sasl and not self.username:
            raise ConfigError(f"kafka {self.security_protocol} needs a SASL username")
        if self.sasl and self.password is None and self.password_file is None:
            raise ConfigError(f"kafka user {self.username!r} needs a password or a password file")

    @property
    def sasl(self) -> bool:
        return self.security_protocol in SASL_PROTOCOLS

    def secret(self) -> str:
        """The password (read from ``password_file`` when one is named)."""
        if self.password is not None:
            return self.password
        if self.password_file is None:
            raise ConfigError("kafka connection has no password")
        try:
            return Path(self.password_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"kafka password file {self.password_file}: {exc}") from exc

    def client_config(self, **overrides: Any) -> dict[str, Any]:
        """The librdkafka settings: connection, then ``extra``, then ``overrides``.

        Keys use librdkafka's dotted names; pass them in ``overrides`` as a dict splat,
        e.g. ``conn.client_config(**{"group.id": "g"})``.
        """
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.sasl:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.username
            conf["sasl.password"] = self.secret()
        conf.update(self.extra)
        conf.update(overrides)
        return conf

    def as_user(
        self, username: str, *, password: str | None = None, password_file: str | None = None
    ) -> KafkaConnection:
        """The same cluster as another principal (SASL_PLAINTEXT unless already SASL)."""
        protocol = self.security_protocol if self.sasl else "SASL_PLAINTEXT"
        return replace(
            self,
            security_protocol=protocol,
            username=username,
            password=password,
            password_file=password_file,
        )

    def env(self, prefix: str = "EDGECLOUD_") -> dict[str, str]:
        """Environment for a child process's ``KafkaSettings`` (the password only by file
        when there is one)."""
        out = {
            f"{prefix}KAFKA_BOOTSTRAP": self.bootstrap,
            f"{prefix}KAFKA_SECURITY_PROTOCOL": self.security_protocol,
        }
        if self.sasl:
            out[f"{prefix}KAFKA_SASL_MECHANISM"] = self.sasl_mechanism
            out[f"{prefix}KAFKA_SASL_USERNAME"] = self.username or ""
            if self.password_file is not None:
                out[f"{prefix}KAFKA_SASL_PASSWORD_FILE"] = self.password_file
            else:
                out[f"{prefix}KAFKA_SASL_PASSWORD"] = self.secret()
        return out

    def settings(self) -> dict[str, Any]:
        """This connection as ``KafkaSettings`` fields: ``CloudSettings(**conn.settings())``."""
        return {
            "kafka_bootstrap": self.bootstrap,
            "kafka_security_protocol": self.security_protocol,
            "kafka_sasl_mechanism": self.sasl_mechanism,
            "kafka_sasl_username": self.username,
            "kafka_sasl_password": self.password,
            "kafka_sasl_password_file": self.password_file,
            "kafka_config": dict(self.extra),
        }

    def describe(self) -> dict[str, Any]:
        """What ``dev status --json`` shows: everything but the password."""
        return {
            "bootstrap": self.bootstrap,
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism if self.sasl else None,
            "username": self.username,
            "password_file": self.password_file,
        }
