"""Fixtures of the edge agent tests: the real agent process (``edgecloud edge run``).

The agents here subscribe ``devices/+/telemetry``: on the shared test broker they would also
take every other test's telemetry (and counts would not be exact) and leave persistent
sessions behind. So each module gets its own Mosquitto (``broker``); Postgres is the shared
stack's, one fresh database per agent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edgeagent_helpers import AgentFactory, Devices

from edgecloud.core.signing import generate_key, public_key_b64
from edgecloud.dev.stack import Infra, Ports
from edgecloud.testing.edge_process import AgentProcess


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    return generate_key()


@pytest.fixture(scope="module")
def public_key(signing_key: Ed25519PrivateKey) -> str:
    return public_key_b64(signing_key)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """A Mosquitto of this module alone (own state dir, own free port)."""
    infra = Infra(tmp_path_factory.mktemp("broker") / "state", Ports.free())
    infra.mosquitto.start()
    yield infra
    infra.mosquitto.stop()


@pytest.fixture(scope="module")
def devices(broker: Infra) -> Iterator[Devices]:
    d = Devices(broker)
    yield d
    d.pub.stop()


@pytest.fixture
def start_agent(broker: Infra, tmp_path: Path) -> Iterator[AgentFactory]:
    """Start ``edgecloud edge run`` processes; all are stopped (SIGTERM) afterwards."""
    started: list[AgentProcess] = []

    def start(node_id: str, database_url: str, **env: str) -> AgentProcess:
        user, pw = broker.mqtt_account("edge-agent")
        agent = AgentProcess(
            node_id=node_id, database_url=database_url, mqtt_url=broker.mqtt_url,
            mqtt_username=user, mqtt_password=pw,
            log_path=tmp_path / f"agent-{node_id}-{len(started)}.log",
            extra_env={"EDGECLOUD_HEARTBEAT_INTERVAL_S": "1", "EDGECLOUD_BATCH_WINDOW_MS": "5",
                       **env},
        )  # fmt: skip
        started.append(agent)
        return agent.start()

    yield start
    for agent in started:
        agent.stop()
