"""The desired-state body (``GET /api/v1/nodes/{id}/desired``): typed once, built by the cloud
(``cloud/rollouts/desired.py``), read by the edge (``edge/models/agent.py``,
``edge/device_agent.py``).

The JSON is the one the route always sent: ``model`` is null when the cloud manages no
model for the node; ``devices`` is present only for a node that has registered devices. Unknown
keys are kept (``extra="allow"``) so a newer cloud's additions reach an older node's state file
unchanged, and the ETag (sha256 of the canonical JSON) is computed from :meth:`DesiredState.body`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DesiredModel(BaseModel):
    """The model a node should run, and the shadow gates its candidate must pass."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    rollout_id: str | None = None
    artifact_url: str
    artifact_sha256: str
    artifact_size: int | None = None
    file_sha256: str | None = None
    key_id: str | None = None
    # the rollout's gates (``cloud/rollouts/plan.py:Gates``); ints stay ints on the wire
    shadow: dict[str, int | float] = Field(default_factory=dict)


class DesiredDevices(BaseModel):
    """The devices' part (issue 16): a change of it moves the ETag; the list is at ``url``."""

    model_config = ConfigDict(extra="allow")

    count: int
    changed_at: str | None = None
    url: str


class DesiredState(BaseModel):
    model_config = ConfigDict(extra="allow")

    node_id: str
    model: DesiredModel | None = None
    devices: DesiredDevices | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body: ``devices`` left out when the node has none (as the wire has it)."""
        out = self.model_dump(mode="json")
        if out.get("devices") is None:
            out.pop("devices", None)
        return out

    def etag(self) -> str:
        return etag_of(self.body())


def etag_of(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(text.encode()).hexdigest() + '"'
