"""OpenAI-compatible chat endpoints (OpenAI, an NVIDIA NIM, the local stand-in) via the SDK.

The only module that imports ``openai``. ``chat_json`` asks for a JSON answer (``json_schema``
when a schema is given, else ``json_object``) and returns the parsed object and the token usage.
SDK errors become edgecloud errors, with the SDK error as ``__cause__``:

    openai.RateLimitError                 -> RateLimited (TransportError), retry_after_s
    openai.APITimeoutError                -> TransportError("... timed out ...")
    openai.APIConnectionError             -> TransportError
    openai.APIStatusError (4xx/5xx)       -> TransportError (``status_code`` kept on it)
    answer that is not a JSON object      -> ModelError

The SDK's own retries (``max_retries``, exponential backoff, honours Retry-After) run first;
the error surfaces only once they are spent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI, OpenAI

from edgecloud.core.errors import ModelError, RateLimited, TransportError

Message = Mapping[str, Any]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class HTTPStatusFailed(TransportError):
    """The endpoint answered with an HTTP error status (other than 429)."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


def response_format(
    json_schema: Mapping[str, Any] | None, name: str = "result", strict: bool = False
) -> dict[str, Any]:
    """``json_object`` without a schema; ``json_schema`` with one (``strict`` needs a schema
    whose objects all set ``additionalProperties: false`` and list every property as required).
    """
    if json_schema is None:
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": dict(json_schema), "strict": strict},
    }


def _retry_after(exc: openai.APIStatusError) -> float | None:
    raw = exc.response.headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


@contextmanager
def _translated(base_url: str) -> Iterator[None]:
    try:
        yield
    except openai.RateLimitError as exc:
        raise RateLimited(
            f"{base_url}: rate limited (429) after retries", _retry_after(exc)
        ) from exc
    except openai.APITimeoutError as exc:
        raise TransportError(f"{base_url}: request timed out") from exc
    except openai.APIConnectionError as exc:
        raise TransportError(f"{base_url}: connection failed: {exc}") from exc
    except openai.APIStatusError as exc:
        raise HTTPStatusFailed(
            f"{base_url}: HTTP {exc.status_code}: {exc.message}", exc.status_code
        ) from exc
    except openai.OpenAIError as exc:
        raise TransportError(f"{base_url}: {exc}") from exc


def _parse(completion: Any, base_url: str) -> tuple[dict[str, Any], Usage]:
    choices = getattr(completion, "choices", None) or []
    content = choices[0].message.content if choices else None
    if not content:
        raise ModelError(f"{base_url}: the answer has no content")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{base_url}: the answer is not JSON: {content[:200]!r}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{base_url}: the answer is JSON {type(data).__name__}, not an object")
    u = completion.usage
    usage = (
        Usage(u.prompt_tokens or 0, u.completion_tokens or 0, u.total_tokens or 0)
        if u is not None
        else Usage()
    )
    return data, usage


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    api_key: str
    timeout_s: float = 10.0
    max_retries: int = 2


def _request(
    messages: Sequence[Message],
    model: str,
    json_schema: Mapping[str, Any] | None,
    schema_name: str,
    temperature: float | None,
    max_tokens: int | None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [dict(m) for m in messages],
        "response_format": response_format(json_schema, schema_name),
    }
    if temperature is not None:
        kwargs["temperature"] = temperature
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    return kwargs


class OpenAICompatClient:
    """A blocking client for one OpenAI-compatible endpoint; thread-safe (one pool)."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout_s: float = 10.0, max_retries: int = 2
    ) -> None:
        self.config = ClientConfig(base_url, api_key, timeout_s, max_retries)
        self._client = OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries
        )

    def chat_json(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        json_schema: Mapping[str, Any] | None = None,
        schema_name: str = "result",
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
    ) -> tuple[dict[str, Any], Usage]:
        kwargs = _request(messages, model, json_schema, schema_name, temperature, max_tokens)
        with _translated(self.config.base_url):
            completion = self._client.chat.completions.create(**kwargs)
        return _parse(completion, self.config.base_url)

    def list_models(self) -> list[str]:
        with _translated(self.config.base_url):
            return [m.id for m in self._client.models.list()]

    def close(self) -> None:
        self._client.close()


class AsyncOpenAICompatClient:
    """The asyncio twin of ``OpenAICompatClient`` (same arguments, same errors)."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout_s: float = 10.0, max_retries: int = 2
    ) -> None:
        self.config = ClientConfig(base_url, api_key, timeout_s, max_retries)
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries
        )

    async def chat_json(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        json_schema: Mapping[str, Any] | None = None,
        schema_name: str = "result",
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
    ) -> tuple[dict[str, Any], Usage]:
        kwargs = _request(messages, model, json_schema, schema_name, temperature, max_tokens)
        with _translated(self.config.base_url):
            completion = await self._client.chat.completions.create(**kwargs)
        return _parse(completion, self.config.base_url)

    async def list_models(self) -> list[str]:
        with _translated(self.config.base_url):
            return [m.id async for m in self._client.models.list()]

    async def close(self) -> None:
        await self._client.close()
