"""``GET /``: the dashboard page (no token needed to load it; the page asks for one, takes
``#token=`` from the URL fragment, which never reaches the server's log, or uses the one kept in
the browser's localStorage, and calls the API with it).
Its assets are served from the package under ``/dashboard/`` (no CDN)."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from edgecloud.cloud.dashboard import ASSETS_DIR

router = APIRouter(tags=["dashboard"])


@cache
def _index() -> str:
    return (ASSETS_DIR / "index.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    return HTMLResponse(_index(), headers={"Cache-Control": "no-cache"})
