"""Shared fixtures (docs/design.md, "Test fixtures").

``stack`` starts (or reuses) the real local services of ``~/.cache/edgecloud/test`` on the test
ports, under a file lock, and leaves them running for the next session (fast warm start).
``EDGECLOUD_TEST_POSTGRES_URL`` / ``_MQTT_URL`` / ``_KAFKA_BOOTSTRAP`` point at external
services instead; ``EDGECLOUD_TEST_STATE_DIR`` moves the state. Tests that kill or cut off a
service use ``private_infra``: their own instance, own state dir, own free ports.
``EDGECLOUD_TEST_PORTS=pg,mqtt,kafka,controller`` moves the shared stack off the default test
ports (a second, isolated stack on one machine, e.g. to time a fresh CI run).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgecloud.dev.stack import TEST_PORTS, External, Infra, Ports, ensure_infra

# Test clients' persistent sessions (and those of the agents and bridges the tests start) expire
# 5 min after they go away. A bridge's session subscribes to every node's events, so each one a
# test leaves behind queues all later tests' events: with the production default (7 days) the
# shared test broker's persistence file reached 1-2 GB, and each 30 s autosave took most of a
# core for 5 s. Tests that restart an agent or a bridge do so within seconds.
os.environ.setdefault("EDGECLOUD_MQTT_SESSION_EXPIRY_S", "300")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration and tests/e2e carry their marker without repeating it."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


def shared_state_dir() -> Path:
    env = os.environ.get("EDGECLOUD_TEST_STATE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecloud" / "test"


def shared_ports() -> Ports:
    env = os.environ.get("EDGECLOUD_TEST_PORTS")
    if not env:
        return TEST_PORTS
    postgres, mqtt, kafka, controller = (int(p) for p in env.split(","))
    return Ports(postgres, mqtt, kafka, controller)


@pytest.fixture(scope="session")
def stack() -> Infra:
    """The shared test infrastructure (Postgres, Mosquitto, Kafka), started or reused."""
    return ensure_infra(shared_state_dir(), shared_ports(), External.from_env("EDGECLOUD_TEST_"))


@pytest.fixture
def unique_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def pg_url(stack: Infra, unique_id: str) -> Iterator[str]:
    """A fresh Postgres database (``postgresql+psycopg://``), dropped afterwards."""
    name = f"t_{unique_id}"
    url = stack.create_database(name)
    yield url
    stack.drop_database(name)


@pytest.fixture
def engine(pg_url: str) -> Iterator[Any]:
    """An engine on ``pg_url`` migrated to the cloud schema (a unit test's own SQLite ``engine``
    fixture, where it has one, takes precedence in its module)."""
    from edgecloud.cloud.db import make_engine
    from edgecloud.cloud.migrations import migrate

    migrate(pg_url)
    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


@pytest.fixture
def kafka_prefix(stack: Infra, unique_id: str) -> Iterator[str]:
    """A unique topic prefix such as ``t3f9a1c.``, granted to the stack's Kafka principals
    ``bridge``, ``worker`` and ``dapr-cloud``; its topics and grants go afterwards."""
    prefix = f"t{unique_id}."
    stack.kafka_grant(prefix)
    yield prefix
    from edgecloud.adapters.kafka_admin import delete_topics_with_prefix

    delete_topics_with_prefix(stack.kafka_client(), prefix)
    stack.kafka_revoke(prefix)


@pytest.fixture
def private_infra(tmp_path: Path) -> Iterator[Infra]:
    """An infrastructure of this test alone (fault injection): own state dir and ports.

    Nothing is started yet: call ``.ensure()`` or start single services
    (``.mosquitto.start()``); everything is stopped afterwards.
    """
    infra = Infra(tmp_path / "state", Ports.free())
    yield infra
    infra.stop()
