"""What a node should run: the body of ``GET /api/v1/nodes/{id}/desired`` and its ETag.

The body's shape is ``core/desired.py:DesiredState`` (the edge reads the same model). The ETag
is the sha256 of the canonical JSON body, so it changes exactly when the answer does.
``model`` is null when the cloud manages no model for the node: the node then keeps a model it
loaded itself (``edge run --model``) and drops one the cloud gave it.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from edgecloud.cloud.db import utcnow
from edgecloud.cloud.devices.service import node_version
from edgecloud.cloud.registry.tables import ModelVersion
from edgecloud.cloud.rollouts.engine import aware_utc
from edgecloud.cloud.rollouts.tables import NodeDesired
from edgecloud.core.desired import DesiredDevices, DesiredModel, DesiredState

POLL_TOUCH_EVERY = timedelta(seconds=2)


def desired_state(session: Session, node_id: str, touch: bool = True) -> DesiredState:
    row = session.get(NodeDesired, node_id)
    now = utcnow()
    if touch and (
        row is None
        or row.last_poll_at is None
        or now - aware_utc(row.last_poll_at) > POLL_TOUCH_EVERY
    ):
        if row is None:
            row = NodeDesired(node_id=node_id)
        row.last_poll_at = now
        session.add(row)
        session.commit()
        session.refresh(row)
    model: DesiredModel | None = None
    if row is not None and row.model is not None and row.version is not None:
        mv = session.get(ModelVersion, (row.model, row.version))
        if mv is not None:
            model = DesiredModel(
                name=mv.name,
                version=mv.version,
                rollout_id=row.rollout_id,
                artifact_url=f"/api/v1/models/{mv.name}/{mv.version}/artifact",
                artifact_sha256=mv.artifact_sha256,
                artifact_size=mv.artifact_size,
                file_sha256=mv.file_sha256,
                key_id=mv.key_id,
                shadow=dict(row.shadow or {}),
            )
    devices = node_version(session, node_id)
    # the registry's part (issue 16), only for a node that has devices
    part = DesiredDevices.model_validate(devices) if devices["count"] else None
    return DesiredState(node_id=node_id, model=model, devices=part)
