"""A local server that speaks the OpenAI HTTP API, for tests and the dev stack.

It stands in for OpenAI (cloud escalation) and for an NVIDIA NIM (the edge ``openai``
backend). Real HTTP, real status codes, answers the SDK parses:

- ``GET /v1/models``; ``POST /v1/chat/completions``: a ``chat.completion`` whose content is a
  JSON object derived deterministically from the request (``derive_content``): with a
  ``response_format`` JSON schema, an object valid against it; otherwise a small default object.
  ``usage`` counts whitespace-separated words as tokens.
- ``Authorization: Bearer <api_key>`` is checked (401 with an OpenAI error body otherwise).
- Fault injection at runtime: ``POST /_standin/faults`` with
  ``{"mode": "timeout"|"429"|"500"|"bad_json", "count": n, "delay_s": 30}``: the next ``n``
  chat requests fail that way (``timeout`` answers after ``delay_s``: a slow server;
  ``count`` -1: until cleared with ``{"mode": null}``).
- ``GET /_standin/stats``: request counters (and ``in_flight_max``, the most concurrent chat
  requests seen); ``POST /_standin/reset`` clears faults and counters.

Run it with ``python -m edgecloud.dev.openai_standin --port 8500`` or in-process with
``StandinServer().start()``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

FaultMode = Literal["timeout", "429", "500", "bad_json"]
DEFAULT_MODELS = ("edgecloud-standin", "meta/llama-3.1-8b-instruct")


class FaultRequest(BaseModel):
    mode: FaultMode | None
    count: int = 1
    delay_s: float = 30.0


@dataclass
class StandinState:
    api_key: str | None
    models: tuple[str, ...] = DEFAULT_MODELS
    fault: FaultRequest | None = None
    counters: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            peak = self.counters.get("in_flight_max", 0)
            self.counters["in_flight_max"] = max(peak, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def set_fault(self, fault: FaultRequest | None) -> None:
        with self._lock:
            self.fault = fault if fault is not None and fault.mode is not None else None

    def take_fault(self) -> FaultRequest | None:
        """The fault for this request, if one is armed (and use one of its count)."""
        with self._lock:
            fault = self.fault
            if fault is None or fault.count == 0:
                return None
            if fault.count > 0:
                fault.count -= 1
            self.counters["faults_served"] = self.counters.get("faults_served", 0) + 1
            return fault

    def reset(self) -> None:
        with self._lock:
            self.fault = None
            self.counters.clear()


def _digest(*parts: Any) -> bytes:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()


def _fill(schema: dict[str, Any], seed: bytes, path: str) -> Any:
    """A value valid against the (simple) JSON schema, chosen by ``seed`` and ``path``."""
    h = hashlib.sha256(seed + path.encode()).digest()
    frac = int.from_bytes(h[:8], "big") / 2**64
    if "enum" in schema:
        return schema["enum"][h[0] % len(schema["enum"])]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _fill(schema[key][0], seed, path)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        return {name: _fill(sub, seed, f"{path}.{name}") for name, sub in props.items()}
    if kind == "array":
        n = max(int(schema.get("minItems", 1)), 1)
        return [_fill(schema.get("items", {}), seed, f"{path}[{i}]") for i in range(n)]
    if kind in ("number", "integer"):
        lo = float(schema.get("minimum", 0.0))
        hi = float(schema.get("maximum", lo + 1.0))
        value = lo + frac * (hi - lo)
        return round(value) if kind == "integer" else round(value, 4)
    if kind == "boolean":
        return bool(h[0] & 1)
    if kind == "null":
        return None
    return f"stand-in {path.strip('.') or 'text'} {h[:4].hex()}"


def derive_content(messages: list[Any], response_format: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON object the stand-in answers to ``messages`` (same request, same answer)."""
    seed = _digest(messages)
    schema: dict[str, Any] | None = None
    if response_format and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema")
    if schema is None:
        schema = {
            "type": "object",
            "properties": {
                "score": {"type": "number", "minimum": 0, "maximum": 1},
                "label": {"type": "string", "enum": ["normal", "anomaly"]},
                "explanation": {"type": "string"},
            },
        }
    value = _fill(schema, seed, "")
    return value if isinstance(value, dict) else {"value": value}


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


def _tokens(text: str) -> int:
    return len(text.split())


def create_app(state: StandinState) -> FastAPI:
    app = FastAPI(title="edgecloud OpenAI stand-in")

    def authorised(request: Request) -> bool:
        return state.api_key is None or (
            request.headers.get("authorization") == f"Bearer {state.api_key}"
        )

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        state.count("models")
        if not authorised(request):
            return _error(401, "Incorrect API key provided", "invalid_request_error")
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "edgecloud"}
            for m in state.models
        ]
        return JSONResponse({"object": "list", "data": data})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        state.count("chat_completions")
        state.enter()
        try:
            return await _chat(request)
        finally:
            state.leave()

    async def _chat(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "Incorrect API key provided", "invalid_request_error")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "body is not JSON", "invalid_request_error")
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages or not isinstance(body.get("model"), str):
            return _error(
                400, "'model' and a non-empty 'messages' are required", "invalid_request_error"
            )
        fault = state.take_fault()
        content = json.dumps(derive_content(messages, body.get("response_format")))
        if fault is not None:
            if fault.mode == "429":
                return _error(
                    429, "Rate limit reached (stand-in)", "requests", {"retry-after": "0"}
                )
            if fault.mode == "500":
                return _error(500, "Internal error (stand-in)", "server_error")
            if fault.mode == "timeout":
                deadline = time.monotonic() + fault.delay_s
                while time.monotonic() < deadline and not await request.is_disconnected():
                    await asyncio.sleep(0.05)
            if fault.mode == "bad_json":
                content = "this is not { json"
        prompt = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        usage = {"prompt_tokens": _tokens(prompt), "completion_tokens": _tokens(content)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            }
        )

    @app.post("/_standin/faults")
    async def faults(fault: FaultRequest) -> dict[str, Any]:
        state.set_fault(fault)
        return {"armed": state.fault.model_dump() if state.fault else None}

    @app.get("/_standin/stats")
    async def stats() -> dict[str, Any]:
        return {
            "counters": dict(state.counters),
            "fault": state.fault.model_dump() if state.fault else None,
        }

    @app.post("/_standin/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    return app


class StandinServer:
    """The stand-in on a background thread: ``with StandinServer() as s: s.base_url``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = "standin-key",
        models: tuple[str, ...] = DEFAULT_MODELS,
    ) -> None:
        self.state = StandinState(api_key=api_key, models=models)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            create_app(self.state), log_level="warning", timeout_graceful_shutdown=1, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def api_key(self) -> str | None:
        return self.state.api_key

    def start(self, timeout_s: float = 10.0) -> StandinServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True, name="standin"
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the OpenAI stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--api-key", default="standin-key", help="'' accepts any key")
    args = parser.parse_args(argv)
    state = StandinState(api_key=args.api_key or None)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
