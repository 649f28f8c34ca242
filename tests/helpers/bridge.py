"""One in-process bridge on the shared test stack, for the sync integration tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgecloud.dev.process import free_port, wait_until
from edgecloud.dev.stack import Infra
from edgecloud.sync.bridge import Bridge
from edgecloud.sync.settings import BridgeSettings


@contextmanager
def bridge_thread(
    stack: Infra, kafka_prefix: str, unique_id: str, tmp_path: Path, *, kafka_principal: str,
    heartbeat_interval_s: float,
) -> Iterator[tuple[Bridge, threading.Thread]]:  # fmt: skip
    """A bridge as the stack's ``bridge`` MQTT account, Kafka as ``kafka_principal``, run in a
    thread until the block ends (then stopped and joined; a bridge still alive fails)."""
    user, pw = stack.mqtt_account("bridge")
    settings = BridgeSettings(
        node_id=f"n{unique_id}",
        mqtt_url=stack.mqtt_url,
        mqtt_username=user,
        mqtt_password=pw,
        mqtt_client_id=f"bridge-{unique_id}",
        **stack.kafka_client(kafka_principal).settings(),
        kafka_topic_prefix=kafka_prefix,
        spool_dir=tmp_path / "spool",
        bridge_http_port=free_port(),
        heartbeat_interval_s=heartbeat_interval_s,
    )
    stop = threading.Event()
    bridge = Bridge(settings, stop)
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    wait_until(lambda: bridge.subscriber is not None, 30, "bridge subscribed")
    yield bridge, thread
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
