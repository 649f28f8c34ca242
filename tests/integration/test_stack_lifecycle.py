"""Start, reuse, crash and stop of the local stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edgecloud.dev import process
from edgecloud.dev.control import StackConfig
from edgecloud.dev.stack import External, Infra, ensure_infra

CLI = [str(Path(sys.executable).parent / "edgecloud")]


def test_second_ensure_reuses_the_same_processes(stack: Infra) -> None:
    before = stack.pids()
    again = ensure_infra(stack.state_dir, stack.ports, External.from_env("EDGECLOUD_TEST_"))
    assert again.pids() == before
    assert all(pid is not None for pid in before.values())


def test_private_stack_restarts_after_kill_and_dev_down_leaves_nothing(
    private_infra: Infra, tmp_path: Path
) -> None:
    infra = private_infra.ensure()
    ports = infra.ports
    pids = infra.pids()
    assert all(pid is not None for pid in pids.values())
    for port in (ports.postgres, ports.mqtt, ports.kafka, ports.kafka_controller):
        assert process.port_open("127.0.0.1", port)

    # kill -9 the broker: the next ensure notices and starts a new one on the same port.
    infra.mosquitto.kill()
    assert not infra.mosquitto.running()
    restarted: list[str] = []
    infra.ensure(notify=restarted.append)
    assert restarted == ["mosquitto"]
    assert infra.pids()["mosquitto"] not in (None, pids["mosquitto"])
    assert infra.pids()["postgres"] == pids["postgres"]

    StackConfig(infra.state_dir, nodes=1, ports=ports).save()
    status = subprocess.run(
        [*CLI, "dev", "status", "--json", "--state-dir", str(infra.state_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    info = json.loads(status.stdout)
    assert info["processes"]["kafka"] == pids["kafka"]
    assert info["kafka_bootstrap"] == f"127.0.0.1:{ports.kafka}"
    bridge = info["kafka_clients"]["bridge"]  # client settings, the password by file only
    assert (bridge["security_protocol"], bridge["username"]) == ("SASL_PLAINTEXT", "bridge")
    assert bridge["password_file"] == str(infra.state_dir / "kafka" / "sasl" / "bridge")
    assert set(info["kafka_clients"]) == {"admin", "bridge", "worker", "dapr-cloud", "bench"}
    for name in info["kafka_clients"]:
        assert infra.kafka_client(name).secret() not in status.stdout

    down = subprocess.run(
        [*CLI, "dev", "down", "--state-dir", str(infra.state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert down.returncode == 0, down.stderr
    for port in (ports.postgres, ports.mqtt, ports.kafka, ports.kafka_controller):
        assert not process.port_open("127.0.0.1", port), f"port {port} still listening"
    for pid in [*pids.values(), *infra.pids().values()]:
        assert pid is None or not process.pid_alive(pid)
    assert list((infra.state_dir / "run").glob("*.pid")) == []
