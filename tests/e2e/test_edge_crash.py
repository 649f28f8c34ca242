"""The edge agent killed with -9 mid-ingest and restarted: no reading lost, none stored twice.

Real Mosquitto (this test's own instance; persistent session, QoS 1, manual acks) and real
Postgres; the agent is the real ``edgecloud edge run`` process. Devices keep publishing while
the agent is dead; the broker holds their messages for the agent's session. After the restart
every (device, seq) is one row, every reading event id was published (at least once), and the
outbox is drained.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from edgecloud.adapters.mqtt import MqttConfig, make_publisher, make_subscriber
from edgecloud.core.events import reading_event_id
from edgecloud.dev.stack import Infra
from edgecloud.edge.db import make_engine
from edgecloud.testing.edge_process import AgentProcess

DEVICES = 20
PER_DEVICE = 750  # 15,000 readings


def _agent(stack: Infra, node: str, url: str, log: Path) -> AgentProcess:
    user, pw = stack.mqtt_account("edge-agent")
    return AgentProcess(node_id=node, database_url=url, mqtt_url=stack.mqtt_url,
                        mqtt_username=user, mqtt_password=pw, log_path=log,
                        extra_env={"EDGECLOUD_HEARTBEAT_INTERVAL_S": "1"})  # fmt: skip


def _publish(stack: Infra, devices: list[str], progress: list[int]) -> None:
    user, pw = stack.mqtt_account("simulator")
    pub = make_publisher(MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port, username=user,
                               password=pw))  # fmt: skip
    pub.start()
    infos = []
    for seq in range(PER_DEVICE):
        for d in devices:
            body = {"device_id": d, "seq": seq, "ts": time.time(),
                    "values": {"temperature": 20.0 + seq % 7, "pressure": 3.0}}  # fmt: skip
            infos.append(pub.publish(f"devices/{d}/telemetry", json.dumps(body)))
            progress[0] += 1
        if len(infos) >= 1000:
            pub.wait(infos, 60)
            infos.clear()
        time.sleep(0.002)  # ~ 8,000 readings/s at most: the kill lands mid-stream
    pub.wait(infos, 60)
    pub.stop()


def test_kill_9_and_restart_loses_nothing_and_stores_nothing_twice(
    private_infra: Infra, pg_url: str, tmp_path: Path
) -> None:
    stack = private_infra  # its own Mosquitto: no other test's telemetry, no session left over
    stack.mosquitto.start()
    node = f"crash-{uuid.uuid4().hex[:6]}"
    devices = [f"{node}-d{i}" for i in range(DEVICES)]
    total = DEVICES * PER_DEVICE
    user, pw = stack.mqtt_account("admin")
    ev_sub = make_subscriber(MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port, username=user,
                                   password=pw), [f"edgecloud/{node}/events/reading"],
                        client_id=f"test-ev-{node}")  # fmt: skip
    ev_sub.start()
    event_ids: list[str] = []
    stop = threading.Event()

    def collect() -> None:
        while not stop.is_set():
            for m in ev_sub.get_batch(500, 0.05):
                event_ids.extend(e["event_id"] for e in json.loads(m.payload))
                m.ack()

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    agent = _agent(stack, node, pg_url, tmp_path / "agent-1.log").start()
    progress = [0]
    publisher = threading.Thread(target=_publish, args=(stack, devices, progress), daemon=True)
    publisher.start()
    engine = make_engine(pg_url)

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM readings")).scalar_one())

    deadline = time.monotonic() + 60
    while count() < total // 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    agent.kill()  # SIGKILL mid-stream: no shutdown code runs
    at_kill = count()
    assert 0 < at_kill < total
    time.sleep(1.0)  # devices keep publishing into the broker's session queue
    agent2 = _agent(stack, node, pg_url, tmp_path / "agent-2.log").start()
    publisher.join(120)
    assert progress[0] == total
    deadline = time.monotonic() + 90
    while count() < total and time.monotonic() < deadline:
        time.sleep(0.2)
    deadline = time.monotonic() + 30
    while len(set(event_ids)) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # anything late (a duplicate row, a stray event) would show now

    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT device_id, seq FROM readings")).all()
        unpublished_sql = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        unpublished = conn.execute(sa.text(unpublished_sql)).scalar_one()
        dead = conn.execute(sa.text("SELECT count(*) FROM dead_letters")).scalar_one()
    engine.dispose()
    stop.set()
    collector.join(5)
    ev_sub.stop()
    counters: dict[str, Any] = agent2.counters()
    assert agent2.stop() == 0  # SIGTERM: clean exit

    expected = {(d, s) for d in devices for s in range(PER_DEVICE)}
    assert len(rows) == total  # none stored twice (and the PK would refuse it)
    assert set(map(tuple, rows)) == expected  # none lost
    assert dead == 0 and unpublished == 0
    assert {str(reading_event_id(d, s)) for d, s in expected} == set(event_ids)
    # the first agent's rows were all committed before the kill; the second stores the rest,
    # and what the first committed without acknowledging comes back as counted duplicates
    assert counters["processed"] == total - at_kill
    assert counters["dead_letters"] == 0
