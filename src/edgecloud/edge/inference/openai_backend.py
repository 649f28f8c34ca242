"""The ``openai`` backend: an OpenAI-compatible endpoint (an NVIDIA NIM on a Jetson) answers.

Each reading is one chat request (the manifest's prompt, a JSON answer); at most
``concurrency`` requests are in flight across all callers (a semaphore), each with the
manifest's timeout and the SDK's retries. A reading whose request fails after the retries is
an ``InferenceFailure`` (``endpoint_error``), so one slow endpoint never stops the agent.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edgecloud.adapters.openai import OpenAICompatClient
from edgecloud.core.errors import ModelError, TransportError
from edgecloud.core.events import InferenceResult, ModelRef
from edgecloud.core.manifest import Bundle, OpenAISpec
from edgecloud.core.readings import Reading
from edgecloud.edge.inference.port import InferenceFailure, ModelRefused, Outcome

DEFAULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "label": {"type": "string"},
        "anomaly": {"type": "boolean"},
    },
    "required": ["score", "label", "anomaly"],
    "additionalProperties": False,
}


def _prompt(spec: OpenAISpec, reading: Reading) -> str:
    return spec.prompt.format(
        device_id=reading.device_id,
        seq=reading.seq,
        ts=reading.ts.isoformat(),
        values=json.dumps(reading.values, sort_keys=True),
    )


class OpenAIBackend:
    def __init__(self, bundle: Bundle, client: OpenAICompatClient | None = None) -> None:
        m = bundle.manifest
        assert m.openai is not None
        self.ref = ModelRef(name=m.name, version=m.version)
        self.manifest = m
        self.spec = spec = m.openai
        base_url = (
            os.environ.get(spec.base_url_env) if spec.base_url_env else None
        ) or spec.base_url
        if not base_url:
            raise ModelRefused(
                "endpoint", f"no base URL: set {spec.base_url_env} or openai.base_url"
            )
        try:
            _prompt(spec, Reading(device_id="d", seq=0, ts="2026-01-01T00:00:00Z", values={"x": 0}))
        except (KeyError, IndexError, ValueError) as exc:
            raise ModelRefused("endpoint", f"prompt does not format: {exc!r}") from exc
        api_key = (os.environ.get(spec.api_key_env) if spec.api_key_env else None) or "not-needed"
        self._client = client or OpenAICompatClient(
            base_url, api_key, timeout_s=spec.timeout_s, max_retries=spec.max_retries
        )
        self._slots = threading.BoundedSemaphore(spec.concurrency)
        self._pool = ThreadPoolExecutor(spec.concurrency, thread_name_prefix=f"nim-{m.name}")
        self.providers = [f"openai:{base_url}"]

    def infer_batch(self, readings: Sequence[Reading]) -> list[Outcome]:
        return list(self._pool.map(self._one, readings))

    def _one(self, reading: Reading) -> Outcome:
        spec, m = self.spec, self.manifest
        messages = [
            {"role": "system", "content": spec.system},
            {"role": "user", "content": _prompt(spec, reading)},
        ]
        t0 = time.perf_counter()
        with self._slots:
            try:
                answer, usage = self._client.chat_json(
                    messages, model=spec.model, json_schema=spec.json_schema or DEFAULT_SCHEMA
                )
            except TransportError as exc:
                return InferenceFailure("endpoint_error", str(exc))
            except ModelError as exc:
                return InferenceFailure("bad_answer", str(exc))
        latency_ms = (time.perf_counter() - t0) * 1000.0
        try:
            score = float(answer[spec.score_key])
            conf = float(answer[spec.confidence_key]) if spec.confidence_key else None
        except (KeyError, TypeError, ValueError) as exc:
            return InferenceFailure("bad_answer", f"answer {answer!r} lacks a number: {exc!r}")
        raw_label = answer.get(spec.label_key) if spec.label_key else None
        label = raw_label if isinstance(raw_label, str | int) else None
        said_anomaly = bool(spec.anomaly_key and answer.get(spec.anomaly_key) is True)
        escalate = m.decision.escalate
        return InferenceResult(
            model=m.name,
            version=m.version,
            outputs={**answer, "tokens": usage.total_tokens},
            score=score,
            label=label,
            confidence=conf,
            anomaly=said_anomaly or m.decision.anomaly.holds(score, label, conf),
            escalate=escalate.holds(score, label, conf) if escalate else False,
            latency_ms=round(latency_ms, 3),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()
