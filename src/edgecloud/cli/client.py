"""The one HTTP client of the cloud API for the CLI commands and the dev demo (httpx).

``ApiClient`` sends the bearer token, turns an unreachable API into ``ApiUnreachable`` and a
non-2xx answer into ``ApiRefused`` (status, the API's ``error`` code and ``detail``), follows
``next_cursor`` pages, and uploads files as multipart through httpx (streamed from a file
object, so a progress callback sees each chunk). ``api_call`` is the CLI's shorthand: one
request whose failure ends the command with the API's words (``edgecloud: error: ...``).

Commands take ``--api-url`` (EDGECLOUD_CLOUD_API_URL) and ``--token`` (EDGECLOUD_API_TOKEN;
without one, the dev stack's token of the scope from ``$EDGECLOUD_STATE_DIR/tokens.json``).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgecloud.cli._common import fail
from edgecloud.core.errors import EdgecloudError, TransportError

if TYPE_CHECKING:  # imported when a client is made: the CLI starts without it
    import httpx

DEFAULT_API_URL = "http://127.0.0.1:8400"
ApiUrl = Annotated[str, typer.Option(envvar="EDGECLOUD_CLOUD_API_URL", help="cloud API base URL")]
Token = Annotated[
    str | None,
    typer.Option(envvar="EDGECLOUD_API_TOKEN", help="API token (default: the dev stack's)"),
]


class ApiUnreachable(TransportError):
    """No answer from the API (connection refused, timeout, broken stream)."""


class ApiRefused(EdgecloudError):
    """The API answered, but not 2xx; ``error`` and ``detail`` are its JSON error body."""

    def __init__(self, status: int, error: str | None, detail: str) -> None:
        self.status, self.error, self.detail = status, error, detail
        self.what = f"{error}: {detail}" if error else detail
        super().__init__(f"cloud API answered {status}: {self.what}")

    @classmethod
    def of(cls, res: httpx.Response) -> ApiRefused:
        try:
            body = res.json()
            return cls(res.status_code, body.get("error"), str(body.get("detail")))
        except (ValueError, AttributeError):
            return cls(res.status_code, None, res.text[:500])


def dev_token(scope: str) -> str | None:
    """The dev stack's token of ``scope`` (``edgecloud dev up`` writes them), if any."""
    state = Path(os.environ.get("EDGECLOUD_STATE_DIR", "~/.cache/edgecloud/dev")).expanduser()
    try:
        tokens = json.loads((state / "tokens.json").read_text())
    except (OSError, ValueError):
        return None
    token = tokens.get(scope) if isinstance(tokens, dict) else None
    return str(token) if token else None


def resolve_token(token: str | None, scope: str) -> str:
    token = token or dev_token(scope)
    if not token:
        fail(f"no API token: pass --token or set EDGECLOUD_API_TOKEN (a {scope}-scope token)")
    return token


class _Counted(io.BytesIO):
    """The upload body, telling ``on_chunk`` how many bytes httpx has read of it."""

    def __init__(self, data: bytes, on_chunk: Callable[[int], None]) -> None:
        super().__init__(data)
        self._on_chunk = on_chunk

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if chunk:
            self._on_chunk(len(chunk))
        return chunk


class ApiClient:
    def __init__(self, api_url: str, token: str | None, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.api_url, headers=headers, timeout=timeout)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        """The raw answer (any status); ``token`` overrides the client's for this request."""
        import httpx

        if token is not None:
            kw["headers"] = {**kw.get("headers", {}), "Authorization": f"Bearer {token}"}
        try:
            return self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ApiUnreachable(f"cannot reach the cloud API at {self.api_url}: {exc}") from exc

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """The JSON answer of a 2xx (None for 204); ``ApiRefused`` otherwise."""
        res = self.request(method, path, **kw)
        if res.status_code >= 300:
            raise ApiRefused.of(res)
        return None if res.status_code == 204 else res.json()

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """The items of a cursor-paged list, page after page."""
        params = dict(params or {})
        while True:
            page = self.call("GET", path, params=params)
            yield from page["items"]
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def upload(
        self,
        path: str,
        field: str,
        filename: str,
        data: bytes,
        content_type: str,
        on_chunk: Callable[[int], None] = lambda n: None,
        timeout: float = 300.0,
    ) -> httpx.Response:
        """POST ``data`` as the multipart file ``field`` (httpx encodes it); the raw answer."""
        body = _Counted(data, on_chunk)
        return self.request(
            "POST", path, files={field: (filename, body, content_type)}, timeout=timeout
        )


def api_call(method: str, api_url: str, token: str, path: str, **kw: Any) -> Any:
    """One request; a non-2xx answer or an unreachable API ends the command with its message."""
    with ApiClient(api_url, token, timeout=kw.pop("timeout", 30.0)) as client:
        try:
            return client.call(method, path, **kw)
        except ApiUnreachable as exc:
            fail(str(exc))
        except ApiRefused as exc:
            fail(str(exc))
