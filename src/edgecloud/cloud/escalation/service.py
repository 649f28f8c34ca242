"""Escalation: anomalous readings flagged ``escalate`` -> an OpenAI-compatible LLM -> a verdict.

The ``escalations`` table is the queue. The worker inserts a ``pending`` row in the same
transaction as the reading; this task claims due rows (a lease: ``next_attempt_at`` moves
forward, so a crashed worker's claims come back by themselves), asks the model for a JSON
verdict (explanation, severity, suggested_action) with at most ``escalation_concurrency``
requests in flight, and stores it (``done``). Failures are retried with exponential backoff and
jitter up to ``escalation_max_attempts`` (then ``failed``, with the error); consecutive failures
open the circuit breaker; tokens (from ``usage``) count against the budget of the period, and
when it is spent rows become ``budget_exhausted`` and resume in the next period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from datetime import timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.engine import Engine

from edgecloud.adapters.openai import AsyncOpenAICompatClient, HTTPStatusFailed
from edgecloud.cloud import db
from edgecloud.cloud.escalation.policy import CircuitBreaker, TokenBudget, backoff_delay
from edgecloud.cloud.escalation.state import escalation_status, write_state
from edgecloud.cloud.labels import service as labels
from edgecloud.cloud.settings import CloudSettings
from edgecloud.cloud.worker.metrics import WorkerMetrics
from edgecloud.core.errors import ModelError, RateLimited, TransportError

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are a reliability engineer for industrial equipment. An edge model flagged a sensor "
    "reading as anomalous. Explain the likely cause in one or two sentences, rate the severity "
    "(low, medium, high or critical) and suggest one concrete action for the operator. Answer "
    "with a JSON object with the keys explanation, severity, suggested_action."
)


class Verdict(BaseModel):
    explanation: str = Field(min_length=1, max_length=4000)
    severity: Literal["low", "medium", "high", "critical"]
    suggested_action: str = Field(min_length=1, max_length=4000)


VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "explanation": {"type": "string"},
        "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "suggested_action": {"type": "string"},
    },
    "required": ["explanation", "severity", "suggested_action"],
    "additionalProperties": False,
}


class _Retryable(Exception):
    pass


def _describe(value: Any) -> Any:
    if isinstance(value, list) and len(value) > 16:
        return {"n": len(value), "min": min(value), "max": max(value), "head": value[:8]}
    return value


def build_messages(reading: dict[str, Any]) -> list[dict[str, str]]:
    body = {
        "device_id": reading["device_id"],
        "node_id": reading["node_id"],
        "ts": reading["ts"].isoformat(),
        "values": {k: _describe(v) for k, v in (reading["values"] or {}).items()},
        "edge_inference": reading["inference"],
    }
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps(body, default=str)},
    ]


class EscalationService:
    def __init__(
        self,
        engine: Engine,
        settings: CloudSettings,
        metrics: WorkerMetrics | None = None,
        client: AsyncOpenAICompatClient | None = None,
    ) -> None:
        self.engine = engine
        self.s = settings
        self.metrics = metrics or WorkerMetrics()
        self.client = client or AsyncOpenAICompatClient(
            settings.openai_base_url or "https://api.openai.com/v1",
            settings.openai_api_key or "",
            timeout_s=settings.escalation_timeout_s,
            max_retries=0,  # retries, backoff and the breaker are ours
        )
        self.breaker = CircuitBreaker(
            settings.escalation_breaker_failures, settings.escalation_breaker_cooldown_s
        )
        self.budget = TokenBudget(
            settings.escalation_token_budget, settings.escalation_budget_period_s
        )
        self.sem = asyncio.Semaphore(settings.escalation_concurrency)
        self._inflight: set[asyncio.Task[str]] = set()
        self._published: dict[str, Any] = {}
        self.lease = timedelta(
            seconds=settings.escalation_timeout_s * (settings.escalation_max_attempts + 1)
            + settings.escalation_backoff_max_s * settings.escalation_max_attempts
        )

    # --- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        if self.budget.exhausted:
            state = "budget_exhausted"
        elif self.breaker.state == "open":
            state = "circuit_open"
        else:
            state = "enabled"
        return {
            "state": state,
            "model": self.s.escalation_model,
            "base_url": self.s.openai_base_url or "https://api.openai.com/v1",
            "breaker": self.breaker.state,
            "consecutive_failures": self.breaker.consecutive,
            "retry_in_s": round(self.breaker.retry_in_s(), 3),
            "tokens_used": self.budget.used,
            "token_budget": self.budget.budget,
            "period_start": self.budget.period_start,
            "resets_at": self.budget.resets_at,
        }

    def publish(self, force: bool = False) -> None:
        value = self.state()
        key = {k: v for k, v in value.items() if k != "retry_in_s"}
        if force or key != self._published:
            write_state(self.engine, value)
            self._published = key
            self.metrics.breaker_open.set(1 if value["breaker"] == "open" else 0)
            self.metrics.escalation_tokens_used.set(value["tokens_used"])
            self.metrics.escalation_token_budget.set(value["token_budget"])

    def restore(self) -> None:
        """Carry the tokens already spent in this period over a restart."""
        prev = escalation_status(self.engine)
        if isinstance(prev.get("period_start"), int | float):
            self.budget.restore(float(prev["period_start"]), int(prev.get("tokens_used") or 0))

    # --- queue ----------------------------------------------------------------------------------
    def claim(self, limit: int) -> list[dict[str, Any]]:
        """Due rows (pending; budget_exhausted once the budget is back), leased to this task."""
        e, r = db.table_of(db.Escalation), db.table_of(db.Reading)
        now = db.utcnow()
        statuses = ["pending"] if self.budget.exhausted else ["pending", "budget_exhausted"]
        sel = (
            sa.select(e.c.event_id, e.c.attempts)
            .where(e.c.status.in_(statuses), e.c.next_attempt_at <= now)
            .order_by(e.c.next_attempt_at)
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            sel = sel.with_for_update(skip_locked=True)
        with self.engine.begin() as conn:
            rows = conn.execute(sel).all()
            if not rows:
                return []
            ids = [row[0] for row in rows]
            conn.execute(
                sa.update(e)
                .where(e.c.event_id.in_(ids))
                .values(status="pending", next_attempt_at=now + self.lease, updated_at=now)
            )
            readings = (
                conn.execute(
                    sa.select(
                        r.c.event_id,
                        r.c.device_id,
                        r.c.node_id,
                        r.c.ts,
                        r.c["values"],
                        r.c.inference,
                    ).where(r.c.event_id.in_(ids))
                )
                .mappings()
                .all()
            )
        attempts = {row[0]: row[1] for row in rows}
        return [{**dict(x), "attempts": attempts[x["event_id"]]} for x in readings]

    def finish(self, event_id: Any, **values: Any) -> None:
        e = db.table_of(db.Escalation)
        values["updated_at"] = db.utcnow()
        with self.engine.begin() as conn:
            conn.execute(sa.update(e).where(e.c.event_id == event_id).values(**values))
            if values.get("severity"):  # the verdict as a label (cloud/labels), same commit
                labels.record_escalation(conn, event_id, str(values["severity"]))
        if "status" in values:
            self.metrics.escalations.labels(values["status"]).inc()

    # --- one reading ----------------------------------------------------------------------------
    async def _call(self, reading: dict[str, Any]) -> tuple[Verdict, int]:
        try:
            async with self.sem:
                data, usage = await asyncio.wait_for(
                    self.client.chat_json(
                        build_messages(reading),
                        model=self.s.escalation_model,
                        json_schema=VERDICT_SCHEMA,
                        schema_name="escalation_verdict",
                        max_tokens=self.s.escalation_max_tokens,
                    ),
                    timeout=self.s.escalation_timeout_s + 1.0,
                )
        except HTTPStatusFailed as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                raise _Retryable(str(exc)) from exc
            raise
        except (TimeoutError, ModelError, TransportError) as exc:
            raise _Retryable(str(exc) or type(exc).__name__) from exc
        self.budget.spend(usage.total_tokens)
        self.metrics.escalation_tokens.inc(usage.total_tokens)
        try:
            return Verdict.model_validate(data), usage.total_tokens
        except ValidationError as exc:
            raise _Retryable(f"answer does not fit the verdict schema: {exc}") from exc

    async def escalate(self, reading: dict[str, Any]) -> str:
        """Escalate one claimed reading; returns the status it ends in."""
        event_id = reading["event_id"]
        attempts = int(reading["attempts"])
        last_error = ""
        while attempts < self.s.escalation_max_attempts:
            if self.budget.exhausted:
                self.finish(
                    event_id,
                    status="budget_exhausted",
                    attempts=attempts,
                    next_attempt_at=_at(self.budget.resets_at),
                    error="token budget of the period is spent",
                )
                return "budget_exhausted"
            if not self.breaker.allow():
                self.finish(
                    event_id,
                    attempts=attempts,
                    error=last_error or None,
                    next_attempt_at=db.utcnow()
                    + timedelta(seconds=max(self.breaker.retry_in_s(), 0.05)),
                )
                return "pending"
            attempts += 1
            try:
                verdict, tokens = await self._call(reading)
            except _Retryable as exc:
                self.breaker.failure()
                last_error = str(exc)[:2000]
                delay = backoff_delay(
                    attempts - 1, self.s.escalation_backoff_s, self.s.escalation_backoff_max_s
                )
                if isinstance(exc.__cause__, RateLimited) and exc.__cause__.retry_after_s:
                    delay = max(
                        delay, min(exc.__cause__.retry_after_s, self.s.escalation_backoff_max_s)
                    )
                log.warning(
                    "escalation attempt failed",
                    extra={
                        "event_id": str(event_id),
                        "attempt": attempts,
                        "error": last_error[:300],
                    },
                )
                self.publish()
                if attempts < self.s.escalation_max_attempts:
                    await asyncio.sleep(delay)
                continue
            except Exception as exc:  # not retryable (4xx other than 429, a bug): give up
                self.breaker.failure()
                self.finish(event_id, status="failed", attempts=attempts, error=str(exc)[:2000])
                return "failed"
            self.breaker.success()
            self.finish(
                event_id,
                status="done",
                attempts=attempts,
                error=None,
                severity=verdict.severity,
                explanation=verdict.explanation,
                suggested_action=verdict.suggested_action,
                model=self.s.escalation_model,
                tokens=tokens,
            )
            self.publish()
            return "done"
        self.finish(event_id, status="failed", attempts=attempts, error=last_error or "failed")
        return "failed"

    # --- loop -----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, poll_s: float = 0.5) -> None:
        self.restore()
        self.publish(force=True)
        log.info(
            "escalation enabled",
            extra={"model": self.s.escalation_model, "base_url": self.s.openai_base_url},
        )
        try:
            while not stop.is_set():
                self.publish()
                free = self.s.escalation_concurrency * 2 - len(self._inflight)
                batch = self.claim(free) if free > 0 and self.breaker.state != "open" else []
                for reading in batch:
                    task = asyncio.create_task(self.escalate(reading))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
                if not batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=poll_s)
                else:
                    await asyncio.sleep(0)
        finally:
            for task in list(self._inflight):
                task.cancel()  # their rows keep a lease and come back after it
            await asyncio.gather(*self._inflight, return_exceptions=True)
            await self.client.close()


def _at(epoch_s: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_s, tz=UTC)


class EscalationRunner:
    """Runs ``EscalationService`` on its own asyncio loop in a thread beside the Kafka loop."""

    def __init__(
        self, engine: Engine, settings: CloudSettings, metrics: WorkerMetrics | None = None
    ) -> None:
        self.engine, self.settings, self.metrics = engine, settings, metrics
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="escalation", daemon=True)
        self._ready = threading.Event()

    def _main(self) -> None:
        async def go() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            service = EscalationService(self.engine, self.settings, self.metrics)
            await service.run(self._stop)

        try:
            asyncio.run(go())
        except Exception:  # process edge: log, the worker keeps ingesting
            log.exception("escalation task crashed")
        finally:
            self._ready.set()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)
