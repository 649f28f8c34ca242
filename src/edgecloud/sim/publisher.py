"""Publish simulated device telemetry to the edge broker (``edgecloud simulate``).

Each tick (``1 / rate`` seconds) every device publishes one contract reading on
``devices/{device_id}/telemetry`` at QoS 1, from ``FleetGenerator``. ``seq`` starts at the
current epoch milliseconds and grows by one per reading, so it keeps increasing across runs
with the same device ids (an agent drops a replayed or older ``seq``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from edgecloud.core.errors import Backpressure
from edgecloud.sim.data import FAULTS, SENSORS, FleetGenerator

ACK_WINDOW = 20_000  # wait for PUBACKs once this many publishes are outstanding


class Publishing(Protocol):
    """What the simulator needs of ``edgecloud.adapters.mqtt.Publisher``."""

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> Any: ...

    def wait(self, infos: Any, timeout_s: float = 30.0) -> None: ...


@dataclass(frozen=True)
class SimulationConfig:
    devices: int = 10
    rate_hz: float = 1.0  # readings per second per device
    duration_s: float = 60.0
    anomaly_rate: float = 0.02
    seed: int = 0
    device_prefix: str = "sim"
    sim_step_s: float = 60.0  # simulated seconds per tick (the daily cycle shows in minutes)
    start_seq: int | None = None  # default: epoch milliseconds


@dataclass
class SimulationStats:
    published: int = 0
    acked: int = 0
    anomalous: int = 0
    by_fault: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate_per_s(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


def device_ids(cfg: SimulationConfig) -> list[str]:
    width = max(3, len(str(cfg.devices)))
    return [f"{cfg.device_prefix}-{i:0{width}d}" for i in range(1, cfg.devices + 1)]


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(device_id: str, seq: int, ts: float, row: Any) -> bytes:
    values = {name: round(float(v), 4) for name, v in zip(SENSORS, row, strict=True)}
    body = {"device_id": device_id, "seq": seq, "ts": rfc3339(ts), "values": values}
    return json.dumps(body, separators=(",", ":")).encode()


def _publish(pub: Publishing, topic: str, data: bytes) -> Any:
    while True:
        try:
            return pub.publish(topic, data, qos=1)
        except Backpressure:
            time.sleep(0.01)


def run_simulation(
    cfg: SimulationConfig,
    pub: Publishing,
    *,
    on_tick: Callable[[SimulationStats], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[FleetGenerator, list[str], int, Any], None] | None = None,
) -> SimulationStats:
    """Publish until ``duration_s`` has passed (or ``should_stop``); wait for every PUBACK.

    ``on_step(generator, device_ids, seq, fault_kinds)`` sees each tick's ground truth after
    it is published (and may change the generator's ``fault_weights`` for the next ones)."""
    ids = device_ids(cfg)
    topics = [f"devices/{d}/telemetry" for d in ids]
    gen = FleetGenerator(
        cfg.devices, seed=cfg.seed, anomaly_rate=cfg.anomaly_rate, dt_s=cfg.sim_step_s
    )
    seq = cfg.start_seq if cfg.start_seq is not None else int(time.time() * 1000)
    stats = SimulationStats()
    pending: list[Any] = []
    interval = 1.0 / cfg.rate_hz
    t0 = time.monotonic()
    tick = 0
    while not should_stop():
        due = t0 + tick * interval
        if due - t0 >= cfg.duration_s:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        values, kinds = gen.step()
        now = time.time()
        for d in range(cfg.devices):
            pending.append(_publish(pub, topics[d], payload(ids[d], seq, now, values[d])))
            if kinds[d]:
                stats.anomalous += 1
                name = FAULTS[int(kinds[d])]
                stats.by_fault[name] = stats.by_fault.get(name, 0) + 1
        stats.published += cfg.devices
        if on_step is not None:
            on_step(gen, ids, seq, kinds)
        seq += 1
        tick += 1
        if len(pending) >= ACK_WINDOW:
            pub.wait(pending)
            stats.acked += len(pending)
            pending.clear()
        stats.seconds = time.monotonic() - t0
        if on_tick is not None:
            on_tick(stats)
    pub.wait(pending)
    stats.acked += len(pending)
    stats.seconds = time.monotonic() - t0
    return stats
