"""The ``openai`` (NIM) inference backend against the local OpenAI stand-in, over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading
from edgecloud.core.signing import generate_key, public_key_b64, sign_bundle
from edgecloud.dev.openai_standin import FaultRequest, StandinServer, derive_content
from edgecloud.edge.inference import (
    InferenceBackend,
    InferenceFailure,
    InferenceSettings,
    ModelRefused,
    load_bundle,
)
from edgecloud.edge.inference.openai_backend import DEFAULT_SCHEMA
from helpers.readings import reading

PROMPT = "Device {device_id} (seq {seq}) reports {values}. Score how abnormal this is."
SYSTEM = "You detect anomalies."


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with StandinServer(api_key="nim-key") as server:
        yield server


@pytest.fixture
def server(standin: StandinServer, monkeypatch: pytest.MonkeyPatch) -> StandinServer:
    standin.state.reset()
    monkeypatch.setenv("TEST_NIM_URL", standin.base_url)
    monkeypatch.setenv("TEST_NIM_KEY", "nim-key")
    return standin


Make = Callable[..., InferenceBackend]


@pytest.fixture
def make(tmp_path: Path) -> Make:
    key = generate_key()

    def go(**openai: Any) -> InferenceBackend:
        folder = tmp_path / f"nim{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        spec = {
            "model": "meta/llama-3.1-8b-instruct",
            "base_url_env": "TEST_NIM_URL",
            "api_key_env": "TEST_NIM_KEY",
            "system": SYSTEM,
            "prompt": PROMPT,
            "timeout_s": 5,
            "max_retries": 0,
            "concurrency": 2,
            **openai,
        }
        doc = {
            "name": "nim-anomaly",
            "version": "0.1.0",
            "runtime": "openai",
            "openai": spec,
            "decision": {"anomaly": {"score_above": 0.8}, "escalate": {"label_in": ["anomaly"]}},
        }
        (folder / "manifest.yaml").write_text(yaml.safe_dump(doc))
        sign_bundle(folder, key)
        return load_bundle(folder, trusted_keys=[public_key_b64(key)], settings=InferenceSettings())

    return go


def press(i: int) -> Reading:
    return reading(f"press-{i % 3}", i, temperature=70.0 + i, vibration_rms=0.4 + i / 10)


def expected_answer(r: Reading) -> dict[str, Any]:
    user = PROMPT.format(
        device_id=r.device_id, seq=r.seq, ts="", values=json.dumps(r.values, sort_keys=True)
    )
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    return derive_content(
        messages, {"type": "json_schema", "json_schema": {"schema": DEFAULT_SCHEMA}}
    )


def test_results_follow_the_endpoint_answers(server: StandinServer, make: Make) -> None:
    backend = make()
    readings = [press(i) for i in range(12)]
    out = backend.infer_batch(readings)
    backend.close()
    assert server.state.counters["chat_completions"] == 12
    for r, o in zip(readings, out, strict=True):
        assert isinstance(o, InferenceResult)
        answer = expected_answer(r)
        assert o.score == pytest.approx(answer["score"])
        assert o.label == answer["label"]
        assert o.anomaly == (answer["anomaly"] or answer["score"] > 0.8)
        assert o.escalate == (answer["label"] == "anomaly")
        assert o.outputs["tokens"] > 0
        assert o.latency_ms is not None and o.latency_ms > 0
        assert (o.model, o.version) == ("nim-anomaly", "0.1.0")
    assert len({o.score for o in out if isinstance(o, InferenceResult)}) > 1


def test_concurrency_is_limited(server: StandinServer, make: Make) -> None:
    server.state.set_fault(FaultRequest(mode="timeout", count=8, delay_s=0.2))
    backend = make(concurrency=2)
    t0 = time.monotonic()
    out = backend.infer_batch([press(i) for i in range(8)])
    elapsed = time.monotonic() - t0
    backend.close()
    assert all(isinstance(o, InferenceResult) for o in out)
    assert server.state.counters["in_flight_max"] == 2
    assert elapsed >= 0.8 - 0.05  # 8 slow answers, two at a time


def test_429_is_retried(server: StandinServer, make: Make) -> None:
    server.state.set_fault(FaultRequest(mode="429", count=1))
    backend = make(max_retries=2, concurrency=1)
    out = backend.infer_batch([press(1)])
    backend.close()
    assert isinstance(out[0], InferenceResult)
    assert server.state.counters["chat_completions"] == 2


def test_500_and_429_after_retries_fail_per_reading(server: StandinServer, make: Make) -> None:
    server.state.set_fault(FaultRequest(mode="500", count=-1))
    backend = make(max_retries=1)
    out = backend.infer_batch([press(1), press(2)])
    assert all(
        isinstance(o, InferenceFailure) and o.reason == "endpoint_error" and "500" in o.detail
        for o in out
    )
    assert server.state.counters["chat_completions"] == 4  # one retry each
    server.state.set_fault(FaultRequest(mode="429", count=-1))
    out = backend.infer_batch([press(3)])
    assert isinstance(out[0], InferenceFailure) and "rate limited" in out[0].detail
    server.state.set_fault(None)
    assert isinstance(backend.infer_batch([press(4)])[0], InferenceResult)  # recovers
    backend.close()


def test_timeout_fails_fast_per_reading(server: StandinServer, make: Make) -> None:
    server.state.set_fault(FaultRequest(mode="timeout", count=1, delay_s=10))
    backend = make(timeout_s=1.0, concurrency=1)
    t0 = time.monotonic()
    out = backend.infer_batch([press(1), press(2)])
    backend.close()
    assert time.monotonic() - t0 < 6
    assert isinstance(out[0], InferenceFailure) and "timed out" in out[0].detail
    assert isinstance(out[1], InferenceResult)


def test_bad_json_answer_is_bad_answer(server: StandinServer, make: Make) -> None:
    server.state.set_fault(FaultRequest(mode="bad_json", count=1))
    backend = make(concurrency=1)
    out = backend.infer_batch([press(1)])
    backend.close()
    assert isinstance(out[0], InferenceFailure) and out[0].reason == "bad_answer"


def test_answer_missing_score_is_bad_answer(server: StandinServer, make: Make) -> None:
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    backend = make(json_schema=schema)
    out = backend.infer_batch([press(1)])
    backend.close()
    assert isinstance(out[0], InferenceFailure) and out[0].reason == "bad_answer"


def test_refused_without_endpoint_or_with_bad_prompt(
    server: StandinServer, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ModelRefused, match="prompt does not format") as err:
        make(prompt="value {unknown_field}")
    assert err.value.reason == "endpoint"
    monkeypatch.delenv("TEST_NIM_URL")
    with pytest.raises(ModelRefused, match="no base URL"):
        make()
