"""Escalation against the local OpenAI stand-in (real SDK, real HTTP) with injected faults:
timeouts, 429, 500 and bad JSON are retried; the breaker opens and half-opens; the token
budget runs out with a clear status. Readings come from the worker's own Store on Postgres."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from edgecloud.adapters.kafka_consumer import RawMessage
from edgecloud.cloud.escalation import EscalationService, escalation_status
from edgecloud.cloud.settings import CloudSettings
from edgecloud.cloud.worker.decode import decode
from edgecloud.cloud.worker.store import Store
from edgecloud.core.events import reading_event_id
from edgecloud.dev.openai_standin import StandinServer


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with StandinServer() as server:
        yield server


@pytest.fixture
def server(standin: StandinServer) -> StandinServer:
    standin.state.reset()
    return standin


def arm(server: StandinServer, mode: str | None, count: int = 1, delay_s: float = 5.0) -> None:
    r = httpx.post(
        f"http://{server.host}:{server.port}/_standin/faults",
        json={"mode": mode, "count": count, "delay_s": delay_s},
    )
    r.raise_for_status()


def chat_calls(server: StandinServer) -> int:
    return server.state.counters.get("chat_completions", 0)


def settings(server: StandinServer, pg_url: str, **kw: Any) -> CloudSettings:
    base: dict[str, Any] = {
        "database_url": pg_url,
        "openai_api_key": server.api_key,
        "openai_base_url": server.base_url,
        "escalation_model": "edgecloud-standin",
        "escalation_timeout_s": 0.5,
        "escalation_backoff_s": 0.01,
        "escalation_backoff_max_s": 0.05,
        "escalation_concurrency": 1,
    }
    base.update(kw)
    return CloudSettings(**base)


def store_readings(engine: sa.Engine, n: int) -> list[str]:
    msgs = []
    for seq in range(n):
        ev = {
            "schema": "edgecloud.event/v1",
            "event_id": str(reading_event_id("press-1", seq)),
            "type": "reading",
            "node_id": "edge-a",
            "device_id": "press-1",
            "ts": f"2026-11-22T10:00:{seq:02d}Z",
            "data": {
                "seq": seq,
                "values": {"vibration_rms": 2.5, "audio": [0.1] * 40},
                "inference": {
                    "model": "iso",
                    "version": "1",
                    "score": 0.97,
                    "anomaly": True,
                    "escalate": True,
                },
            },
        }
        msgs.append(RawMessage("p.edgecloud.readings", 0, seq, None, json.dumps(ev).encode()))
    assert Store(engine).write(decode(msgs, "dl")).escalations_queued == n
    return [str(reading_event_id("press-1", s)) for s in range(n)]


def rows(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        res = (
            conn.execute(
                sa.text(
                    "SELECT event_id, status, severity, explanation, suggested_action, tokens, "
                    "attempts, error FROM escalations"
                )
            )
            .mappings()
            .all()
        )
    return {str(r["event_id"]): dict(r) for r in res}


async def escalate_all(svc: EscalationService) -> list[str]:
    try:
        return [await svc.escalate(r) for r in sorted(svc.claim(100), key=lambda r: r["ts"])]
    finally:
        svc.publish()
        await svc.client.close()


def test_verdicts_are_stored_with_the_reading(
    server: StandinServer, pg_url: str, engine: sa.Engine
) -> None:
    ids = store_readings(engine, 3)
    svc = EscalationService(engine, settings(server, pg_url))
    assert asyncio.run(escalate_all(svc)) == ["done"] * 3
    got = rows(engine)
    assert sorted(got) == sorted(ids)
    for r in got.values():
        assert r["severity"] in ("low", "medium", "high", "critical")
        assert r["explanation"] and r["suggested_action"] and r["tokens"] > 0
        assert r["attempts"] == 1 and r["error"] is None
    state = escalation_status(engine)
    assert state["state"] == "enabled"
    assert state["tokens_used"] == sum(r["tokens"] for r in got.values())
    assert chat_calls(server) == 3


@pytest.mark.parametrize("mode", ["500", "429", "bad_json", "timeout"])
def test_faults_are_retried(
    server: StandinServer, pg_url: str, engine: sa.Engine, mode: str
) -> None:
    (event_id,) = store_readings(engine, 1)
    arm(server, mode, count=2, delay_s=3.0)
    svc = EscalationService(engine, settings(server, pg_url))
    assert asyncio.run(escalate_all(svc)) == ["done"]
    row = rows(engine)[event_id]
    assert row["attempts"] == 3 and row["status"] == "done" and row["severity"]
    assert chat_calls(server) == 3


def test_breaker_opens_then_half_open_probe_closes_it(
    server: StandinServer, pg_url: str, engine: sa.Engine
) -> None:
    ids = store_readings(engine, 3)
    arm(server, "500", count=-1)
    s = settings(
        server,
        pg_url,
        escalation_max_attempts=2,
        escalation_breaker_failures=3,
        escalation_breaker_cooldown_s=0.5,
    )
    svc = EscalationService(engine, s)

    async def scenario() -> tuple[list[str], dict[str, Any], list[str]]:
        try:
            claimed = sorted(svc.claim(100), key=lambda r: r["ts"])
            first = [await svc.escalate(r) for r in claimed]
            svc.publish()
            open_state = dict(escalation_status(engine), calls=chat_calls(server))
            arm(server, None)
            await asyncio.sleep(0.6)  # cool-down over: half-open
            again = [
                await svc.escalate(dict(r, attempts=rows(engine)[str(r["event_id"])]["attempts"]))
                for r in claimed[1:]
            ]
            svc.publish()
            return first, open_state, again
        finally:
            await svc.client.close()

    first, open_state, again = asyncio.run(scenario())
    # reading 0: two failures -> failed; reading 1: third failure opens the circuit -> pending;
    # reading 2: refused by the open circuit -> pending, no request sent.
    assert first == ["failed", "pending", "pending"]
    assert open_state["state"] == "circuit_open" and open_state["breaker"] == "open"
    assert open_state["calls"] == 3
    assert again == ["done", "done"] and chat_calls(server) == 5
    got = rows(engine)
    assert got[ids[0]]["status"] == "failed" and "500" in got[ids[0]]["error"]
    assert [got[i]["status"] for i in ids[1:]] == ["done", "done"]
    assert escalation_status(engine)["state"] == "enabled"


def test_token_budget_exhausted_is_stored_and_published(
    server: StandinServer, pg_url: str, engine: sa.Engine
) -> None:
    ids = store_readings(engine, 3)
    svc = EscalationService(engine, settings(server, pg_url, escalation_token_budget=1))
    assert asyncio.run(escalate_all(svc)) == ["done", "budget_exhausted", "budget_exhausted"]
    got = rows(engine)
    assert [got[i]["status"] for i in ids] == ["done", "budget_exhausted", "budget_exhausted"]
    state = escalation_status(engine)
    assert state["state"] == "budget_exhausted"
    assert state["tokens_used"] == got[ids[0]]["tokens"] > 1
    assert state["resets_at"] > state["period_start"]
    assert chat_calls(server) == 1


def test_run_loop_drains_the_queue_concurrently(
    server: StandinServer, pg_url: str, engine: sa.Engine
) -> None:
    ids = store_readings(engine, 8)
    arm(server, "500", count=3)
    svc = EscalationService(engine, settings(server, pg_url, escalation_concurrency=4))

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run(stop, poll_s=0.05))
        for _ in range(200):
            if all(r["status"] == "done" for r in rows(engine).values()):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(main())
    got = rows(engine)
    assert [got[i]["status"] for i in ids] == ["done"] * 8
    assert sum(r["attempts"] for r in got.values()) == 8 + 3
    assert chat_calls(server) == 11
