"""The registry and rollout engine inside the cloud API process.

``start(database_url)`` (called from the API lifespan) builds its own transactional engine
(the API's runs in autocommit mode), the artifact store, trusts the
keys of ``EDGECLOUD_OPERATOR_PUBLIC_KEYS``, and starts one asyncio task that ticks the engine
every ``EDGECLOUD_ROLLOUT_TICK_S`` seconds, or at once when a node report or an operator
action wakes it. With several API replicas, each tick takes a Postgres advisory lock first, so
one replica advances rollouts at a time; all of them serve desired state. Long-polling nodes
(``?wait=``) are woken by this process's engine and also re-read the database every second,
so a change made by another replica reaches them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from edgecloud.cloud import presence
from edgecloud.cloud.db import make_engine, utcnow
from edgecloud.cloud.registry import service
from edgecloud.cloud.registry.settings import RegistrySettings
from edgecloud.cloud.registry.store import ArtifactStore
from edgecloud.cloud.rollouts import engine as rollout_engine
from edgecloud.cloud.transitions import TransitionPublisher

log = logging.getLogger("edgecloud.cloud.rollouts")
_TICK_LOCK = 0x726F_6C6C_6F75  # "rollou": advisory lock id of the rollout engine


class Notifier:
    """Wakes the coroutines waiting on one node's desired state (or on all of them)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def pulse(self, nodes: set[str] | None = None) -> None:
        for node in list(self._events) if nodes is None else nodes & self._events.keys():
            self._events.pop(node).set()

    async def wait(self, node: str, timeout: float) -> None:
        event = self._events.setdefault(node, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


@dataclass
class ModelsRuntime:
    settings: RegistrySettings
    store: ArtifactStore
    engine: Engine
    desired_changed: Notifier = field(default_factory=Notifier)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    stopping: bool = False
    transitions: TransitionPublisher | None = None  # Dapr pub/sub (docs/dapr.md), or none
    # ticks run by this process, by trigger: its own loop (timer, wake) or daprd's cron binding
    ticks: dict[str, int] = field(default_factory=lambda: {"loop": 0, "dapr": 0})
    _scanned_at: float = -1e9

    def publish(self, transitions: Collection[rollout_engine.Transition]) -> None:
        """Hand committed rollout transitions to the Dapr publisher (if there is one)."""
        if self.transitions is not None:
            now = utcnow()
            for t in transitions:
                self.transitions.rollout(t, now)

    def _scan_nodes(self, session: Session) -> None:
        if self.transitions is None:
            return
        if time.monotonic() - self._scanned_at < self.settings.node_scan_s:
            return
        self._scanned_at = time.monotonic()
        now = utcnow()
        for t in presence.scan(session, now):
            self.transitions.node(t, now)

    def session(self) -> Session:
        """A transactional session (the API's own engine runs in autocommit mode)."""
        return Session(self.engine)

    def tick_once(self, trigger: str = "loop") -> rollout_engine.TickResult:
        """Advance every live rollout once (blocking; the loop runs it in a thread)."""
        total = rollout_engine.TickResult(set(), set())
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _TICK_LOCK})
                if not got.scalar():
                    return total
            try:
                with Session(bind=conn) as session:
                    for rid in rollout_engine.tickable(session):
                        res = rollout_engine.advance(session, rid)
                        total.changed_nodes |= res.changed_nodes
                        total.changed_rollouts |= res.changed_rollouts
                        self.publish(res.transitions)
                    self._scan_nodes(session)
                    self.ticks[trigger] += 1
            finally:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _TICK_LOCK})
                    conn.commit()
        return total

    async def _loop(self) -> None:
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.settings.rollout_tick_s)
            self.wake.clear()
            if self.stopping:
                break
            try:
                res = await run_in_threadpool(self.tick_once)
            except Exception:  # the loop must outlive a database hiccup; logged with its cause
                log.exception("rollout engine tick failed; retrying next tick")
                await asyncio.sleep(self.settings.rollout_tick_s)
                continue
            if res.changed_nodes:
                self.desired_changed.pulse(res.changed_nodes)
            for rid in sorted(res.changed_rollouts):
                log.info("rollout %s advanced", rid, extra={"rollout_id": rid})

    def changed(self, nodes: Collection[str] = ()) -> None:
        """Something happened: tick soon, and wake the pollers of ``nodes``."""
        self.wake.set()
        if nodes:
            self.desired_changed.pulse(set(nodes))


class TicksCollector(Collector):
    """``edgecloud_rollout_ticks{trigger}``: ticks of this process's engine, by trigger."""

    def __init__(self, rt: ModelsRuntime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "edgecloud_rollout_ticks", "rollout engine ticks, by trigger", labels=["trigger"]
        )
        for trigger, n in sorted(self.rt.ticks.items()):
            family.add_metric([trigger], n)
        yield family


async def start(
    database_url: str,
    settings: RegistrySettings,
    transitions: TransitionPublisher | None = None,
) -> ModelsRuntime:
    engine = make_engine(database_url, pool_size=5, max_overflow=5)
    store = ArtifactStore(settings.store_dir)
    rt = ModelsRuntime(settings=settings, store=store, engine=engine, transitions=transitions)
    keys = [k.strip() for k in settings.operator_public_keys.split(",") if k.strip()]
    if keys:

        def trust() -> None:
            with Session(engine) as session:
                for key in keys:
                    service.add_key(session, key, "EDGECLOUD_OPERATOR_PUBLIC_KEYS", allow_path=True)

        await run_in_threadpool(trust)
    if settings.rollout_engine:
        rt.task = asyncio.create_task(rt._loop(), name="rollout-engine")
    return rt


async def stop(rt: ModelsRuntime) -> None:
    """Let a tick in flight finish before the engine goes: cancelling the task would leave
    its worker thread holding a connection of a disposed pool (an unclosed-connection warning).
    """
    if rt.task is not None:
        rt.stopping = True
        rt.wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(rt.task), timeout=30)
        except TimeoutError:
            rt.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rt.task
    if rt.transitions is not None:
        rt.transitions.stop()
    rt.engine.dispose()
