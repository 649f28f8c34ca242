"""The dashboard's static page and assets (vanilla JS, inline SVG charts; no CDN, no build)."""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
