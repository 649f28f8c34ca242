"""``edgecloud simulate``: realistic device telemetry with injected anomalies (issue #3)."""

from __future__ import annotations

from edgecloud.cli._common import not_yet


def simulate() -> None:
    """Publish realistic telemetry (with injected anomalies) to the edge broker."""
    not_yet("simulate", 3)
