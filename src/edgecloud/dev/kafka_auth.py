"""Who may do what on the local stack's Kafka: SASL/SCRAM principals and their ACLs.

Every principal has a random password made once per state dir, in
``<state>/kafka/sasl/<name>`` (mode 0600; the folder 0700); the broker learns them as
SCRAM-SHA-512 credentials when its storage is formatted. ``admin`` is the super user (the stack's
own topic creation, ACLs, test clean-up); the others get only the ACLs below, written by
``KafkaService`` once the broker answers:

- ``bridge``: write, describe and create the events topics (``edgecloud.readings``,
  ``.heartbeats``, ``.model-status``, ``.dead-letters``) of a topic prefix; idempotent producer;
- ``worker``: read, describe and create the same topics; its consumer groups
  (``edgecloud-cloud-worker*``);
- ``dapr-cloud``: topics ``<prefix>edgecloud.dapr.*``, groups ``edgecloud-dapr-*``;
- ``bench``: topics and groups ``bench*`` (benchmarks' own topics), ``read_topics``' groups.

Events topics are granted per topic prefix (``""`` for the dev stack; tests and benches add
theirs with ``Infra.kafka_grant(prefix)``). The prefixes are kept in
``<state>/kafka/grants.json`` so that a broker started later (or restarted on a fresh state)
gets them too.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from edgecloud.adapters.kafka import READER_GROUP_PREFIX
from edgecloud.adapters.kafka_admin import Grant
from edgecloud.cloud.settings import DEFAULT_GROUP_ID
from edgecloud.core.topics import KAFKA_DEAD_LETTERS, KAFKA_TOPICS
from edgecloud.dev.base import create_once

ADMIN = "admin"
PRINCIPALS = (ADMIN, "bridge", "worker", "dapr-cloud", "bench")
DAPR_TOPIC_PREFIX = "edgecloud.dapr."
DAPR_GROUP_PREFIX = "edgecloud-dapr-"
BENCH_PREFIX = "bench"


def events_topics(prefix: str) -> list[str]:
    return [prefix + t for t in (*KAFKA_TOPICS.values(), KAFKA_DEAD_LETTERS)]


def base_grants() -> list[Grant]:
    """The ACLs that do not depend on a topic prefix."""
    return [
        Grant("bridge", "BROKER", "kafka-cluster", "IDEMPOTENT_WRITE"),
        Grant("worker", "GROUP", DEFAULT_GROUP_ID, "READ", "PREFIXED"),
        Grant("dapr-cloud", "GROUP", DAPR_GROUP_PREFIX, "READ", "PREFIXED"),
        Grant("bench", "TOPIC", BENCH_PREFIX, "ALL", "PREFIXED"),
        Grant("bench", "GROUP", BENCH_PREFIX, "READ", "PREFIXED"),
        Grant("bench", "GROUP", READER_GROUP_PREFIX, "READ", "PREFIXED"),
        Grant("bench", "BROKER", "kafka-cluster", "IDEMPOTENT_WRITE"),
    ]


def prefix_grants(prefix: str) -> list[Grant]:
    """The ACLs of one topic prefix: its events topics and its dapr topics."""
    out: list[Grant] = []
    for topic in events_topics(prefix):
        out += [Grant("bridge", "TOPIC", topic, op) for op in ("WRITE", "DESCRIBE", "CREATE")]
        out += [Grant("worker", "TOPIC", topic, op) for op in ("READ", "DESCRIBE", "CREATE")]
    out.append(Grant("dapr-cloud", "TOPIC", prefix + DAPR_TOPIC_PREFIX, "ALL", "PREFIXED"))
    return out


class Credentials:
    """The principals' password files of one Kafka state folder."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "sasl"
        self.grants_file = home / "grants.json"

    def path(self, name: str) -> Path:
        if name not in PRINCIPALS:
            raise ValueError(f"unknown kafka principal {name!r} (one of {', '.join(PRINCIPALS)})")
        return self.dir / name

    def complete(self) -> bool:
        return all((self.dir / name).exists() for name in PRINCIPALS)

    def ensure(self) -> None:
        """Make the missing password files (create-if-absent: two processes agree)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        for name in PRINCIPALS:
            path = self.dir / name
            if not path.exists():
                create_once(path, secrets.token_urlsafe(24))

    def password(self, name: str) -> str:
        return self.path(name).read_text().strip()

    def scram_args(self, mechanism: str = "SCRAM-SHA-512") -> list[str]:
        """``kafka-storage format`` options adding every principal's SCRAM credential."""
        args: list[str] = []
        for name in PRINCIPALS:
            args += ["--add-scram", f"{mechanism}=[name={name},password={self.password(name)}]"]
        return args

    # --- topic prefixes granted to bridge / worker / dapr-cloud ------------------------
    def prefixes(self) -> list[str]:
        try:
            data = json.loads(self.grants_file.read_text())
        except (OSError, ValueError):
            return [""]
        return [str(p) for p in data] if isinstance(data, list) else [""]

    def record(self, prefix: str, granted: bool) -> None:
        have = self.prefixes()
        want = sorted({*have, prefix}) if granted else [p for p in have if p != prefix]
        self.grants_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.grants_file.with_name(f".grants.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(want))
        tmp.replace(self.grants_file)
