"""The agent's local HTTP API (FastAPI, served by uvicorn on a thread of the agent).

- ``GET /healthz``: MQTT connected, database reachable, model state; 200 when MQTT and the
  database are fine (a missing or failed model is ``degraded``, still 200), else 503.
- ``GET /metrics``: Prometheus text (counters, batch and receive-to-commit histograms).
- ``POST /infer``: a reading body (the telemetry JSON) -> the active model's result, at once,
  without storing it. 400 with ``reason`` for bad input (the reasons of ``core.readings``, or
  ``inference.<reason>`` when the model cannot take it), 503 when no model is loaded.

With ``EDGECLOUD_HTTP_TOKEN`` set (required when the server is bound off loopback), ``/infer``
and ``/metrics`` need ``Authorization: Bearer <token>`` (401 without, compared in constant
time); ``/healthz`` stays open for probes. The server cuts a client whose request is not
complete within 10 s and takes at most 64 connections (``adapters.http_limits``).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from edgecloud.adapters.http_limits import limited_protocol
from edgecloud.core.errors import InvalidReading
from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import check_ts_window, parse_reading

if TYPE_CHECKING:
    from edgecloud.edge.agent import Agent

log = logging.getLogger(__name__)
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _error(status: int, reason: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": reason, "detail": detail}, status_code=status)


def _authorized(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


def _unauthorized() -> JSONResponse:
    resp = _error(401, "unauthorized", "this route needs 'Authorization: Bearer <http token>'")
    resp.headers["WWW-Authenticate"] = "Bearer"
    return resp


def create_app(agent: Agent) -> FastAPI:
    app = FastAPI(title="edgecloud edge agent", version="1", docs_url=None, redoc_url=None)
    secret = agent.settings.http_token
    token = secret.get_secret_value() if secret is not None else None

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        st = agent.holder.status
        db_ok = agent.store.ping()
        mqtt_ok = agent.mqtt_connected
        ok = db_ok and mqtt_ok
        body: dict[str, Any] = {
            "status": ("ok" if st.state == "loaded" else "degraded") if ok else "unavailable",
            "node_id": agent.settings.node_id,
            "mqtt_connected": mqtt_ok,
            "db_ok": db_ok,
            "model": {
                "state": st.state,
                "name": st.ref.name if st.ref else None,
                "version": st.ref.version if st.ref else None,
                "source": st.source,
                "error": st.error,
            },
            "counters": agent.counters.as_dict(),
            "outbox_pending_events": agent.outbox.pending_events,
            "uptime_s": round(agent.uptime_s, 3),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        if not _authorized(request, token):
            return _unauthorized()
        return Response(agent.metrics.render(), media_type=PROMETHEUS_TEXT)

    @app.post("/infer")
    async def infer(request: Request) -> JSONResponse:
        if not _authorized(request, token):
            return _unauthorized()
        limit = agent.settings.max_payload_bytes
        body = await _body_up_to(request, limit)
        if body is None:
            return _error(413, "too_large", f"request body over the limit of {limit} bytes")
        try:
            reading = parse_reading(None, body, limit)
            check_ts_window(reading, time.time(), *agent.settings.ts_window)
        except InvalidReading as exc:
            return _error(400, exc.reason, exc.detail)
        if agent.holder.backend is None:
            st = agent.holder.status
            return _error(503, "no_model", st.error or "no model is loaded on this node")
        outcomes = await _run_sync(agent, reading)
        if outcomes is None:
            return _error(503, "no_model", "no model is loaded on this node")
        out = outcomes[0]
        if not isinstance(out, InferenceResult):
            return _error(400, f"inference.{out.reason}", out.detail)
        return JSONResponse(
            {
                "device_id": reading.device_id,
                "seq": reading.seq,
                "inference": out.model_dump(mode="json"),
            }
        )

    return app


async def _body_up_to(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is over ``limit`` bytes (never read whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def _run_sync(agent: Agent, reading: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(agent.holder.infer, [reading])


class HttpServer:
    """uvicorn on a daemon thread (signal handlers stay with the agent's main thread)."""

    def __init__(self, agent: Agent, host: str, port: int) -> None:
        config = uvicorn.Config(
            create_app(agent),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            http=limited_protocol(),
            timeout_keep_alive=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)

    def start(self) -> None:
        self.thread.start()
        log.info(
            "local HTTP API",
            extra={"url": f"http://{self.server.config.host}:{self.server.config.port}"},
        )

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5.0)
