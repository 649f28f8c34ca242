"""The benchmark peer: Telegraf doing the same hop as our bridge / worker, in the same run.

Telegraf is what many operators would run for exactly these hops. It is built from its Go module
by ``scripts/build-telegraf.sh`` (pinned version, only the plugins used here) into
``~/.cache/edgecloud/telegraf/<version>/telegraf``; only the benchmarks need it.

- bridge hop: ``inputs.mqtt_consumer`` (QoS 1, persistent session, ``max_undelivered_messages``:
  a message is acknowledged only once the output has delivered it) -> ``outputs.kafka``
  (``required_acks = -1``, ``idempotent_writes = true``), the agent's disk buffer on. The
  payload goes through unchanged (``value`` parser, ``template`` serializer), keyed by the
  device id pulled out of the event with a regex, as our bridge keys readings.
- cloud hop: ``inputs.kafka_consumer`` (``json_v2``: device, seq, event id, the scalar values)
  -> ``outputs.postgresql`` into a table of its own.

Kafka connection settings come in as a :class:`~edgecloud.core.kafka.KafkaConnection`, the
same object our clients are built from, turned into Telegraf's keys by :func:`kafka_options`
(a TLS CA named in its librdkafka pass-through, ``ssl.ca.location``, becomes ``tls_ca``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from edgecloud.core.kafka import KafkaConnection
from edgecloud.dev import process

VERSION = os.environ.get("TELEGRAF_VERSION", "1.37.2")
BUILD_HINT = "scripts/build-telegraf.sh (a few minutes of Go build; cached afterwards)"


class PeerMissing(RuntimeError):
    """The peer's binary is not built."""


def binary() -> Path:
    """The cached Telegraf binary (``EDGECLOUD_TELEGRAF_BIN`` overrides); PeerMissing if absent."""
    override = os.environ.get("EDGECLOUD_TELEGRAF_BIN")
    default = Path.home() / ".cache/edgecloud/telegraf"
    cache = Path(os.environ.get("EDGECLOUD_TELEGRAF_CACHE", default))
    path = Path(override) if override else cache / VERSION / "telegraf"
    if not os.access(path, os.X_OK):
        raise PeerMissing(f"telegraf {VERSION} is not built ({path}): run {BUILD_HINT}")
    return path


def q(value: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML for these values)."""
    return json.dumps(value)


def kafka_options(conn: KafkaConnection) -> list[str]:
    """Telegraf's Kafka connection keys for a connection."""
    brokers = [b.strip() for b in conn.bootstrap.split(",") if b.strip()]
    lines = [f"brokers = [{', '.join(q(b) for b in brokers)}]"]
    if conn.security_protocol in ("SSL", "SASL_SSL"):
        lines.append("enable_tls = true")
        ca = conn.extra.get("ssl.ca.location")
        if ca:
            lines.append(f"tls_ca = {q(str(ca))}")
    if conn.sasl:
        lines.append(f"sasl_username = {q(conn.username or '')}")
        lines.append(f"sasl_password = {q(conn.secret())}")
        lines.append(f"sasl_mechanism = {q(conn.sasl_mechanism)}")
    # Kafka 4 speaks no protocol older than 2.1: sarama must know it talks to a new broker
    lines.append('version = "3.6.0"')
    return lines


def agent_section(buffer_dir: Path | None, flush_ms: int, batch: int, buffer_limit: int) -> str:
    lines = [
        "[agent]",
        'interval = "10s"',
        f'flush_interval = "{flush_ms}ms"',
        'flush_jitter = "0s"',
        f"metric_batch_size = {batch}",
        f"metric_buffer_limit = {buffer_limit}",
        "omit_hostname = true",
        'precision = "1ns"',
    ]
    if buffer_dir is not None:
        lines += ['buffer_strategy = "disk"', f"buffer_directory = {q(str(buffer_dir))}"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BridgePeerConfig:
    mqtt_url: str  # mqtt://host:port
    mqtt_username: str
    mqtt_password: str
    topic_in: str
    kafka: KafkaConnection
    topic_out: str
    buffer_dir: Path | None
    client_id: str = "telegraf-peer"
    flush_ms: int = 10
    batch: int = 1000
    max_undelivered: int = 1000

    def render(self) -> str:
        u = urlsplit(self.mqtt_url)
        return "\n".join(
            [
                agent_section(self.buffer_dir, self.flush_ms, self.batch, 1_000_000),
                "[[inputs.mqtt_consumer]]",
                f"servers = [{q(f'tcp://{u.hostname}:{u.port or 1883}')}]",
                f"topics = [{q(self.topic_in)}]",
                "qos = 1",
                "persistent_session = true",
                f"client_id = {q(self.client_id)}",
                f"username = {q(self.mqtt_username)}",
                f"password = {q(self.mqtt_password)}",
                f"max_undelivered_messages = {self.max_undelivered}",
                'topic_tag = ""',
                'data_format = "value"',
                'data_type = "string"',
                "",
                # the device id, for the message key (as our bridge keys readings)
                "[[processors.regex]]",
                "  [[processors.regex.fields]]",
                '  key = "value"',
                """  pattern = '^.*?"device_id":"([^"]+)".*$'""",
                "  replacement = '${1}'",
                '  result_key = "device_id"',
                "[[processors.converter]]",
                "  [processors.converter.fields]",
                '  tag = ["device_id"]',
                "",
                "[[outputs.kafka]]",
                *kafka_options(self.kafka),
                f"topic = {q(self.topic_out)}",
                'routing_tag = "device_id"',
                "required_acks = -1",
                "idempotent_writes = true",
                "max_retry = 1000000",
                'data_format = "template"',
                """template = '{{ .Field "value" }}'""",
                "",
            ]
        )


@dataclass(frozen=True)
class CloudPeerConfig:
    kafka: KafkaConnection
    topic_in: str
    group: str
    postgres_dsn: str  # libpq key=value or postgres:// URL
    table: str = "telegraf_readings"
    flush_ms: int = 100
    batch: int = 2000
    max_undelivered: int = 10_000

    def render(self) -> str:
        return "\n".join(
            [
                agent_section(None, self.flush_ms, self.batch, 1_000_000),
                "[[inputs.kafka_consumer]]",
                *kafka_options(self.kafka),
                f"topics = [{q(self.topic_in)}]",
                f"consumer_group = {q(self.group)}",
                'offset = "oldest"',
                f"max_undelivered_messages = {self.max_undelivered}",
                'data_format = "json_v2"',
                "  [[inputs.kafka_consumer.json_v2]]",
                f"  measurement_name = {q(self.table)}",
                '  timestamp_path = "ts"',
                '  timestamp_format = "rfc3339"',
                "    [[inputs.kafka_consumer.json_v2.tag]]",
                '    path = "device_id"',
                "    [[inputs.kafka_consumer.json_v2.tag]]",
                '    path = "node_id"',
                "    [[inputs.kafka_consumer.json_v2.field]]",
                '    path = "event_id"',
                "    [[inputs.kafka_consumer.json_v2.field]]",
                '    path = "data.seq"',
                '    type = "int"',
                "    [[inputs.kafka_consumer.json_v2.object]]",
                '    path = "data.values"',
                '    excluded_keys = ["spectrum"]',
                "",
                "[[outputs.postgresql]]",
                f"connection = {q(self.postgres_dsn)}",
                "tags_as_foreign_keys = false",
                "",
            ]
        )


@dataclass
class TelegrafProc:
    """One Telegraf process of a rendered config; the same config again after a kill -9."""

    config_text: str
    workdir: Path
    pid: int | None = None
    starts: int = 0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.workdir / "telegraf.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "telegraf.log"

    def start(self) -> int:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text)
        self.config_path.chmod(0o600)  # it holds the MQTT / Kafka passwords
        argv = [str(binary()), "--config", str(self.config_path)]
        self._mark = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.pid = process.spawn(argv, self.log_path, env={**os.environ, **self.env})
        self.starts += 1
        return self.pid

    def _log_since_start(self) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._mark)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, marker: str = "Connected", timeout: float = 60.0) -> None:
        """Until the log says ``marker`` (mqtt_consumer logs ``Connected [tcp://...]``)."""

        def died() -> str | None:
            if self.pid is not None and not process.pid_alive(self.pid):
                return "telegraf exited:\n" + process.tail(self.log_path, 20)
            return None

        def ready() -> bool:
            return marker in self._log_since_start()

        process.wait_until(ready, timeout, "telegraf", abort=died)

    def kill9(self) -> None:
        if self.pid is not None:
            process.kill(self.pid)
            self.pid = None

    def stop(self) -> None:
        if self.pid is not None:
            process.terminate(self.pid, signal.SIGTERM, 20.0)
            self.pid = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
