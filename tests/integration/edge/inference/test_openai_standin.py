"""The OpenAI stand-in, driven through the real ``openai`` SDK via ``OpenAICompatClient``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from edgecloud.adapters.openai import (
    AsyncOpenAICompatClient,
    HTTPStatusFailed,
    OpenAICompatClient,
)
from edgecloud.core.errors import ModelError, RateLimited, TransportError
from edgecloud.dev.openai_standin import StandinServer, derive_content

SCHEMA = {
    "type": "object",
    "properties": {
        "severity": {"type": "string", "enum": ["low", "medium", "high"]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "explanation": {"type": "string"},
        "actions": {"type": "array", "items": {"type": "string"}, "minItems": 2},
    },
    "required": ["severity", "score", "explanation", "actions"],
    "additionalProperties": False,
}
MESSAGES = [
    {"role": "system", "content": "You triage sensor anomalies."},
    {"role": "user", "content": "press-07 vibration_rms 2.4 (baseline 0.4)"},
]


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with StandinServer() as server:
        yield server


@pytest.fixture
def server(standin: StandinServer) -> StandinServer:
    standin.state.reset()
    return standin


def arm(server: StandinServer, **fault: object) -> None:
    r = httpx.post(f"http://{server.host}:{server.port}/_standin/faults", json=fault)
    r.raise_for_status()


def client(server: StandinServer, **kw: float) -> OpenAICompatClient:
    return OpenAICompatClient(server.base_url, server.api_key or "", **kw)  # type: ignore[arg-type]


def test_chat_json_returns_schema_valid_deterministic_answer(server: StandinServer) -> None:
    c = client(server)
    data, usage = c.chat_json(MESSAGES, model="edgecloud-standin", json_schema=SCHEMA)
    again, _ = c.chat_json(MESSAGES, model="edgecloud-standin", json_schema=SCHEMA)
    c.close()
    assert data == again
    assert set(data) == {"severity", "score", "explanation", "actions"}
    assert data["severity"] in {"low", "medium", "high"}
    assert 0.0 <= data["score"] <= 1.0
    assert len(data["actions"]) == 2 and all(isinstance(a, str) for a in data["actions"])
    expected = derive_content(MESSAGES, {"type": "json_schema", "json_schema": {"schema": SCHEMA}})
    assert data == expected
    prompt_words = sum(len(str(m["content"]).split()) for m in MESSAGES)
    assert usage.prompt_tokens == prompt_words
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > prompt_words


def test_different_prompts_give_different_answers(server: StandinServer) -> None:
    c = client(server)
    answers = {
        c.chat_json([{"role": "user", "content": f"reading {i}"}], model="m")[0]["score"]
        for i in range(5)
    }
    c.close()
    assert len(answers) == 5


def test_models_listed_and_bad_key_refused(server: StandinServer) -> None:
    c = client(server)
    assert "edgecloud-standin" in c.list_models()
    c.close()
    bad = OpenAICompatClient(server.base_url, "wrong-key", max_retries=0)
    with pytest.raises(HTTPStatusFailed) as err:
        bad.chat_json(MESSAGES, model="m")
    bad.close()
    assert err.value.status_code == 401


def test_429_retried_by_sdk_then_succeeds(server: StandinServer) -> None:
    arm(server, mode="429", count=1)
    c = client(server, max_retries=2)
    data, _ = c.chat_json(MESSAGES, model="m")
    c.close()
    assert "score" in data
    assert server.state.counters["chat_completions"] == 2
    assert server.state.counters["faults_served"] == 1


def test_429_after_retries_spent_is_rate_limited(server: StandinServer) -> None:
    arm(server, mode="429", count=5)
    c = client(server, max_retries=1)
    with pytest.raises(RateLimited) as err:
        c.chat_json(MESSAGES, model="m")
    c.close()
    assert err.value.retry_after_s == 0.0
    assert isinstance(err.value, TransportError)
    assert err.value.__cause__ is not None
    assert server.state.counters["chat_completions"] == 2


def test_500_translated_with_status(server: StandinServer) -> None:
    arm(server, mode="500", count=-1)
    c = client(server, max_retries=0)
    with pytest.raises(HTTPStatusFailed) as err:
        c.chat_json(MESSAGES, model="m")
    c.close()
    assert err.value.status_code == 500


def test_timeout_translated_quickly(server: StandinServer) -> None:
    arm(server, mode="timeout", count=1, delay_s=5)
    c = client(server, timeout_s=0.3, max_retries=0)
    t0 = time.monotonic()
    with pytest.raises(TransportError, match="timed out"):
        c.chat_json(MESSAGES, model="m")
    c.close()
    assert time.monotonic() - t0 < 3


def test_bad_json_answer_is_model_error(server: StandinServer) -> None:
    arm(server, mode="bad_json", count=1)
    c = client(server)
    with pytest.raises(ModelError, match="not JSON"):
        c.chat_json(MESSAGES, model="m")
    c.close()


def test_connection_refused_is_transport_error() -> None:
    c = OpenAICompatClient("http://127.0.0.1:9/v1", "k", timeout_s=1, max_retries=0)
    with pytest.raises(TransportError, match="connection failed"):
        c.chat_json(MESSAGES, model="m")
    c.close()


def test_async_client_concurrent(server: StandinServer) -> None:
    async def go() -> list[dict[str, object]]:
        c = AsyncOpenAICompatClient(server.base_url, server.api_key or "")
        try:
            results = await asyncio.gather(
                *(c.chat_json([{"role": "user", "content": f"r{i}"}], model="m") for i in range(8))
            )
        finally:
            await c.close()
        return [r[0] for r in results]

    answers = asyncio.run(go())
    assert len(answers) == 8
    assert server.state.counters["chat_completions"] == 8


def test_stats_and_reset_endpoints(server: StandinServer) -> None:
    base = f"http://{server.host}:{server.port}"
    arm(server, mode="500", count=3)
    stats = httpx.get(f"{base}/_standin/stats").json()
    assert stats["fault"]["mode"] == "500" and stats["fault"]["count"] == 3
    httpx.post(f"{base}/_standin/reset").raise_for_status()
    assert httpx.get(f"{base}/_standin/stats").json() == {"counters": {}, "fault": None}
