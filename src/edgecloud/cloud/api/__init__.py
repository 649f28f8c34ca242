"""The cloud REST API and dashboard (CONTRACT section 5): ``create_app(settings)``."""

from __future__ import annotations

from edgecloud.cloud.api.app import create_app

__all__ = ["create_app"]
