"""The typed desired-state body is wire-compatible with the untyped dict the route sent before
it: today's bodies round-trip to the same JSON and the same ETag."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgecloud.core.desired import DesiredModel, DesiredState, etag_of

MODEL: dict[str, Any] = {
    "name": "vibration", "version": "1.2.0", "rollout_id": "ro-7",
    "artifact_url": "/api/v1/models/vibration/1.2.0/artifact",
    "artifact_sha256": "a" * 64, "artifact_size": 40960, "file_sha256": "b" * 64,
    "key_id": "k1",
    "shadow": {"shadow_readings": 50, "min_agreement": 0.9, "max_score_drift": 0.1,
               "max_error_rate": 0.01, "max_latency_ms": 100.0, "max_anomaly_rate": 1.0,
               "wave_timeout_s": 600.0, "offline_after_s": 30.0},
}  # fmt: skip
DEVICES = {"count": 3, "changed_at": "2026-12-03T10:00:00+00:00", "url": "/api/v1/nodes/e/devices"}
BODIES = [
    {"node_id": "edge-7", "model": None},
    {"node_id": "edge-7", "model": MODEL},
    {"node_id": "edge-7", "model": MODEL, "devices": DEVICES},
    {"node_id": "edge-7", "model": None, "devices": {**DEVICES, "changed_at": None}},
    {"node_id": "edge-7", "model": {**MODEL, "rollout_id": None, "key_id": None, "shadow": {}}},
]


@pytest.mark.parametrize("body", BODIES)
def test_todays_body_round_trips_to_the_same_json_and_etag(body: dict[str, Any]) -> None:
    state = DesiredState.model_validate_json(json.dumps(body))
    assert state.body() == body
    assert json.dumps(state.body(), sort_keys=True) == json.dumps(body, sort_keys=True)
    assert state.etag() == etag_of(body)


def test_ints_stay_ints_and_unknown_keys_are_kept() -> None:
    body = {"node_id": "n", "model": {**MODEL, "later": {"x": 1}}, "also": [1, 2]}
    state = DesiredState.model_validate(body)
    assert state.model is not None
    assert state.model.shadow["shadow_readings"] == 50
    assert isinstance(state.model.shadow["shadow_readings"], int)
    assert state.body() == body


def test_a_model_without_its_artifact_is_refused() -> None:
    with pytest.raises(ValueError, match="artifact_sha256"):
        DesiredModel.model_validate({k: v for k, v in MODEL.items() if k != "artifact_sha256"})
