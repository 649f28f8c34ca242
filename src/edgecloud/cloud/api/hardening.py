"""What the API does against hostile or careless clients, beyond auth (issue 20).

- ``StrictJson``: a JSON request body with a key twice in one object is a 400
  ``duplicate_key`` (``{"scope": "read", "scope": "admin"}`` would otherwise mean whatever the
  last one says, and a proxy or signer that reads the first one sees another request).
- ``SecurityHeaders``: ``nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY``
  and a Content-Security-Policy on every answer: the dashboard and Swagger UI load only their
  own assets (no CDN, no inline script but Swagger UI's one, allowed by its hash).
- ``AssetFiles``: the package folders served as static assets hand out asset files only
  (``/dashboard/__init__.py`` is a 404).
- ``install_docs``: ``/docs`` with Swagger UI's files from the ``swagger-ui-bundle-v2`` wheel,
  served by the API itself (``/docs/assets/``); ReDoc (CDN only) is off.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ASSET_SUFFIXES = frozenset({".css", ".js", ".html", ".png", ".svg", ".ico", ".map"})
DOCS_ASSETS = "/docs/assets"
_JSON_TYPES = re.compile(rb"^application/(?:[\w.+-]*\+)?json\s*(?:;|$)", re.IGNORECASE)


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def duplicate_key(body: bytes) -> str | None:
    """The first key found twice in one object of ``body``; None if none (or not JSON: the
    route's own parser answers that)."""
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except DuplicateKey as exc:
        return exc.key
    except (ValueError, RecursionError):
        return None
    return None


async def _send_json(send: Send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class StrictJson:
    """Reads a JSON body in full (``BodyLimit``, outside this one, bounds it), checks it for
    duplicate keys, and hands the same bytes to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        ctype = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
        if ctype and not _JSON_TYPES.match(ctype):  # FastAPI reads a body without a type as JSON
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        key = duplicate_key(b"".join(chunks)) if messages[-1]["type"] == "http.request" else None
        if key is not None:
            await _send_json(
                send, 400, "duplicate_key", f"the JSON body has the key {key[:64]!r} twice"
            )
            return
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


CSP_API = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
CSP_PAGES = (
    "default-src 'self'; script-src 'self'{extra}; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, docs_script_hashes: tuple[str, ...] = ()) -> None:
        self.app = app
        extra = "".join(f" '{h}'" for h in docs_script_hashes)
        self.csp_pages = CSP_PAGES.format(extra="").encode()
        self.csp_docs = (
            CSP_PAGES.format(extra=extra)
            .replace(
                "style-src 'self'",
                "style-src 'self' 'unsafe-inline'",  # Swagger UI sets styles
            )
            .encode()
        )
        self.csp_api = CSP_API.encode()

    def _csp(self, path: str) -> bytes:
        if path == "/docs" or path.startswith(DOCS_ASSETS):
            return self.csp_docs
        if path == "/" or path.startswith("/dashboard/"):
            return self.csp_pages
        return self.csp_api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = self._csp(str(scope.get("path", "")))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    *_COMMON,
                    (b"content-security-policy", csp),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class AssetFiles(StaticFiles):
    """``StaticFiles`` that serves only asset suffixes (not the package's ``.py`` files)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if Path(path).suffix.lower() not in ASSET_SUFFIXES:
            return Response(
                json.dumps({"error": "not_found", "detail": "no such asset"}),
                404,
                media_type="application/json",
            )
        return await super().get_response(path, scope)


def _inline_script_hashes(html: str) -> tuple[str, ...]:
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return tuple(
        "sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in scripts
    )


def install_docs(app: FastAPI) -> tuple[str, ...]:
    """Serve ``/docs`` from local assets; returns the CSP hashes of its inline script."""
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - docs",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
    )
    html = bytes(page.body).decode()

    async def docs() -> HTMLResponse:
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.mount(DOCS_ASSETS, AssetFiles(directory=str(swagger_ui_path)), name="docs-assets")
    return _inline_script_hashes(html)
