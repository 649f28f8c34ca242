"""One router per resource; ``api/app.py`` includes them. New resources (models, rollouts,
desired state) add a module here and a line in ``ROUTERS``."""

from __future__ import annotations

from fastapi import APIRouter

from edgecloud.cloud.api.routes import (
    aggregates,
    anomalies,
    dapr,
    dashboard,
    desired,
    devices,
    escalation,
    health,
    learning,
    metrics,
    models,
    nodes,
    registry,
    rollouts,
    tokens,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    dashboard.router,
    registry.router,  # before devices.router: /registry is not a device id there
    devices.router,
    aggregates.router,
    anomalies.router,
    nodes.router,
    escalation.router,
    tokens.router,
    models.router,
    models.keys_router,
    rollouts.router,
    desired.router,
    learning.router,
    registry.node_router,
    dapr.router,
)
