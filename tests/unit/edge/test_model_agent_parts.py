"""The model agent's pure parts: shadow comparison and its gates, the state file, and the
artifact extraction (tarfile's data filter)."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgecloud.core.errors import SignatureError
from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading
from edgecloud.edge.inference.port import InferenceFailure, Outcome
from edgecloud.edge.model_fetch import unpack
from edgecloud.edge.model_shadow import ShadowStats, ShadowTap, gate_failure
from edgecloud.edge.model_state import Installed, ModelAgentState


def res(score: float, anomaly: bool) -> InferenceResult:
    return InferenceResult(model="m", version="1", score=score, anomaly=anomaly)


def test_shadow_stats_and_gates() -> None:
    stats = ShadowStats()
    active: list[Outcome] = [res(0.1, False), res(0.9, True), res(0.2, False), res(0.3, False)]
    cand: list[Outcome] = [
        res(0.2, False),
        res(0.8, True),
        res(0.7, True),
        InferenceFailure("model_error", "x"),
    ]
    stats.add(active, cand, 0.004)
    m = stats.metrics()
    assert m["readings"] == 4.0 and m["error_rate"] == 0.25
    assert m["agreement"] == pytest.approx(2 / 3)
    assert m["score_drift"] == pytest.approx((0.1 + 0.1 + 0.5) / 3)
    assert m["latency_p99_ms"] == pytest.approx(1.0)
    gates = {"min_agreement": 0.6, "max_score_drift": 0.5, "max_error_rate": 0.3}
    assert gate_failure(m, gates, 4) is None
    assert gate_failure(m, {**gates, "min_agreement": 0.9}, 4) == (
        "shadow gate agreement: 0.6667 (limit 0.9)"
    )
    assert gate_failure(m, gates, 10) == "shadow saw 4 of 10 readings in time"


class Fixed:
    def __init__(self) -> None:
        from edgecloud.core.events import ModelRef

        self.ref = ModelRef(name="m", version="1")

    def infer_batch(self, readings: list[Reading]) -> list[Outcome]:
        return [res(0.5, False) for _ in readings]

    def close(self) -> None:
        raise AssertionError("the tap must never close the active model")


def test_tap_answers_with_the_active_model_and_never_blocks() -> None:
    tap = ShadowTap(Fixed(), maxsize=1)  # type: ignore[arg-type]
    r = Reading(device_id="d", seq=1, ts=datetime.now(UTC), values={"t": 1.0})
    assert tap.infer_batch([r]) == [res(0.5, False)]
    assert tap.infer_batch([r, r]) == [res(0.5, False)] * 2  # queue full: dropped, not held
    assert tap.dropped == 2 and tap.batches.qsize() == 1
    tap.close()


def test_state_file_round_trip_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "s" / "state.json"
    st = ModelAgentState(
        etag='"x"',
        active=Installed("m", "1.1.0", "/b", "sha", "r-1"),
        previous=Installed("m", "1.0.0", "/a"),
        refused={"bad": "refused: x"},
    )
    st.save(path)
    assert ModelAgentState.load(path) == st
    assert not path.with_suffix(".tmp").exists()
    path.write_text("{not json")
    assert ModelAgentState.load(path) == ModelAgentState()


def _tar(tmp_path: Path, info: tarfile.TarInfo, data: bytes = b"") -> Path:
    out = tmp_path / "a.tar"
    with tarfile.open(out, "w") as tf:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return out


def test_unpack_refuses_links_and_escapes(tmp_path: Path) -> None:
    good = tarfile.TarInfo("manifest.yaml")
    folder = unpack(_tar(tmp_path, good, b"name: x\n"), tmp_path / "ok")
    assert (folder / "manifest.yaml").read_text() == "name: x\n"
    assert unpack(tmp_path / "a.tar", tmp_path / "ok") == folder  # complete: reused
    link = tarfile.TarInfo("model.onnx")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(SignatureError):
        unpack(_tar(tmp_path, link), tmp_path / "link")
    with pytest.raises(SignatureError):
        unpack(_tar(tmp_path, tarfile.TarInfo("../escape")), tmp_path / "esc")
    assert not (tmp_path / "escape").exists()
