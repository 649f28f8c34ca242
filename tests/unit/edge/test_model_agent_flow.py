"""The model agent's decisions on desired-state changes (no network, no ONNX): which path a
target takes and, above all, which rollout each ``model_status`` report is attributed to.

Regression: a NEW rollout of the version a node still holds as ``previous`` used to be taken
for a rollback (instant swap, ``rolled_back`` reported for the OLD rollout, nothing for the
new one), so the new rollout waited at ``assigned`` until its wave timed out.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import edgecloud.edge.models.agent as model_agent
from edgecloud.core.desired import DesiredModel
from edgecloud.core.errors import SignatureError
from edgecloud.core.events import InferenceResult, ModelRef
from edgecloud.core.readings import Reading
from edgecloud.edge.inference.port import Outcome
from edgecloud.edge.models.agent import ModelAgent
from edgecloud.edge.models.holder import ModelHolder
from edgecloud.edge.models.settings import ModelAgentSettings


class Backend:
    def __init__(self, name: str, version: str) -> None:
        self.ref = ModelRef(name=name, version=version)
        self.closed = False

    def infer_batch(self, readings: Sequence[Reading]) -> list[Outcome]:
        assert not self.closed, f"{self.ref} used after close"
        return [
            InferenceResult(model=self.ref.name, version=self.ref.version, score=0.1, anomaly=False)
            for _ in readings
        ]

    def close(self) -> None:
        self.closed = True


class FakeClient:
    def __init__(self, bad: set[str]) -> None:
        self.reports: list[dict[str, Any]] = []
        self.downloads: list[str] = []
        self.bad = bad  # artifact shas whose signature check fails

    def download(self, url: str, sha256: str, dest: Path) -> Path:
        self.downloads.append(sha256)
        dest.write_text(sha256)
        return dest

    def post_status(self, event_json: str) -> None:
        self.reports.append(json.loads(event_json)["data"])

    def close(self) -> None:
        pass


def target(version: str, rollout_id: str | None, shadow: int = 0) -> DesiredModel:
    return DesiredModel.model_validate({
        "name": "m", "version": version, "rollout_id": rollout_id,
        "artifact_url": f"/api/v1/models/m/{version}/artifact",
        "artifact_sha256": f"sha{version}".ljust(64, "0"), "artifact_size": 10,
        "shadow": {"shadow_readings": shadow} if shadow else {},
    })  # fmt: skip


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelAgent]:
    client = FakeClient(set())

    def unpack(artifact: Path, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sha").write_text(artifact.read_text())
        return folder

    def verify(bundle: Any, keys: Any) -> None:
        if bundle in client.bad:
            raise SignatureError("bad signature")

    monkeypatch.setattr(model_agent, "unpack", unpack)
    monkeypatch.setattr(model_agent, "open_bundle", lambda folder: (folder / "sha").read_text())
    monkeypatch.setattr(model_agent, "verify_bundle", verify)
    settings = ModelAgentSettings(
        node_id="n1", cloud_api_url="http://cloud.invalid", node_token="t",
        model_store_dir=tmp_path, model_status_via="http",
    )  # fmt: skip
    holder = ModelHolder()
    a = ModelAgent(settings, holder)
    a.client.close()
    a.client = client  # type: ignore[assignment]
    loads: list[str] = []

    def load(folder: Path) -> Backend:
        loads.append(folder.name)
        return Backend("m", folder.name.split("-")[1])

    a._load = load  # type: ignore[method-assign]
    a.loads = loads  # type: ignore[attr-defined]
    yield a
    a.stop()


def reports(a: ModelAgent) -> list[tuple[str | None, str, str]]:
    client: FakeClient = a.client  # type: ignore[assignment]
    out = [(r["rollout_id"], r["version"], r["phase"]) for r in client.reports]
    client.reports.clear()
    return out


def serving(a: ModelAgent) -> str | None:
    backend = a.holder.backend
    return backend.ref.version if backend is not None else None


def reconcile_with_readings(a: ModelAgent, t: DesiredModel) -> None:
    """Run ``reconcile`` while readings flow through the holder (what shadow mode needs)."""
    worker = threading.Thread(target=a.reconcile, args=(t,))
    worker.start()
    r = Reading(device_id="d", seq=1, ts=datetime.now(UTC), values={"t": 1.0})
    while worker.is_alive():
        a.holder.infer([r])
        worker.join(0.005)


def test_new_rollout_of_the_held_previous_version_goes_through_the_normal_path(
    agent: ModelAgent,
) -> None:
    agent.reconcile(target("1.0.0", "r-x1"))
    assert serving(agent) == "1.0.0"
    reconcile_with_readings(agent, target("1.1.0", "r-y", shadow=3))
    assert serving(agent) == "1.1.0"
    assert agent.state.previous is not None and agent.state.previous.version == "1.0.0"
    reports(agent)

    # a NEW rollout of 1.0.0 (the node holds it as previous): shadow, then active, for r-x2
    reconcile_with_readings(agent, target("1.0.0", "r-x2", shadow=3))
    got = reports(agent)
    assert all(rid == "r-x2" and v == "1.0.0" for rid, v, _ in got), got
    assert [p for _, _, p in got][-2:] == ["shadow", "active"]
    assert "rolled_back" not in [p for _, _, p in got]
    assert serving(agent) == "1.0.0"
    st = agent.state
    assert st.active is not None and (st.active.version, st.active.rollout_id) == ("1.0.0", "r-x2")
    assert st.previous is not None and st.previous.version == "1.1.0"


def test_rollback_by_the_cloud_is_instant_and_reported_for_the_rolled_back_rollout(
    agent: ModelAgent,
) -> None:
    agent.reconcile(target("1.0.0", "r-x"))
    agent.reconcile(target("1.1.0", "r-y"))
    reports(agent)
    loads = list(agent.loads)  # type: ignore[attr-defined]
    # the engine's rollback: desired = the previous version, no rollout id
    agent.reconcile(target("1.0.0", None))
    assert reports(agent) == [("r-y", "1.1.0", "rolled_back")]
    assert agent.loads == loads  # type: ignore[attr-defined]  # a swap: nothing loaded
    assert serving(agent) == "1.0.0"
    # a rollback carrying the same rollout's id is a rollback too
    agent.reconcile(target("1.1.0", "r-z"))
    reports(agent)
    agent.reconcile(target("1.0.0", "r-z"))
    assert reports(agent) == [("r-z", "1.1.0", "rolled_back")]
    assert serving(agent) == "1.0.0"


def test_refusal_is_reported_to_its_rollout_and_retried_for_a_new_one(
    agent: ModelAgent,
) -> None:
    agent.reconcile(target("1.0.0", "r-a"))
    client: FakeClient = agent.client  # type: ignore[assignment]
    client.bad.add(target("2.0.0", None).artifact_sha256)
    reports(agent)
    agent.reconcile(target("2.0.0", "r-b"))
    assert reports(agent)[-1] == ("r-b", "2.0.0", "refused")
    agent.reconcile(target("2.0.0", "r-b"))  # the same rollout asks again: told at once
    assert reports(agent) == [("r-b", "2.0.0", "refused")]
    client.bad.clear()  # e.g. the bundle is fine now for the node's keys
    agent.reconcile(target("2.0.0", "r-c"))  # a new rollout: evaluated again
    got = reports(agent)
    assert got[0] == ("r-c", "2.0.0", "downloading") and got[-1] == ("r-c", "2.0.0", "active")
    assert serving(agent) == "2.0.0"
