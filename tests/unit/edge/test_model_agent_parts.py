"""The model agent's pure parts: shadow comparison and its gates, the state file, and the
artifact extraction (tarfile's data filter)."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgecloud.core.archive import DEFAULT_MAX_FILES, UnsafeArchive
from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading
from edgecloud.edge.inference.port import InferenceFailure, Outcome
from edgecloud.edge.models.fetch import unpack
from edgecloud.edge.models.shadow import ShadowStats, ShadowTap, gate_failure
from edgecloud.edge.models.state import Installed, ModelAgentState


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
        "shadow gate agreement: 0.6667 (limit 0.9; compared with the active model on 3 readings)"
    )
    assert gate_failure(m, gates, 10, 300) == (
        "shadow saw 4 of 10 readings within 300 s (compared with the active model on 3 readings)"
    )


def test_shadow_across_model_kinds_gates_on_the_candidate_alone() -> None:
    """The active model cannot take the new kind of reading: the candidate's own gates."""
    stats = ShadowStats()
    active: list[Outcome] = [InferenceFailure("value_missing", "no 'temperature'")] * 4
    cand: list[Outcome] = [res(0.2, False), res(0.4, False), res(0.9, True), res(0.3, False)]
    stats.add(active, cand, 0.004)
    m = stats.metrics()
    assert m["readings"] == 4.0 and m["candidate_only"] == 4.0 and m["active_failed"] == 4.0
    assert "agreement" not in m and "score_drift" not in m  # nothing to compare with
    assert m["anomaly_rate"] == 0.25 and m["score_mean"] == pytest.approx(0.45)
    assert m["score_p50"] == 0.4 and m["score_p99"] == 0.9
    gates = {"min_agreement": 0.9, "max_score_drift": 0.1, "max_error_rate": 0.01}
    assert gate_failure(m, gates, 4) is None  # the default gates pass (agreement n/a)
    assert gate_failure(m, {**gates, "max_anomaly_rate": 0.1}, 4) == (
        "shadow gate anomaly_rate: 0.25 (limit 0.1; candidate alone: the active model failed "
        "on all 4 readings it served (another kind of model): gated on its own error rate, "
        "latency and scores)"
    )
    failing = ShadowStats()
    failing.add(active, [InferenceFailure("wrong_shape", "x")] * 4, 0.004)
    fm = failing.metrics()
    assert fm["error_rate"] == 1.0 and fm["active_failed"] == 4.0
    assert gate_failure(fm, gates, 4) == (
        "shadow gate error_rate: 1 (limit 0.01; the candidate failed on all 4 readings)"
    )
    assert gate_failure(ShadowStats().metrics() | {"shadow_dropped": 7.0}, gates, 50, 300) == (
        "shadow saw 0 of 50 readings within 300 s (no readings reached the candidate; "
        "7 readings were dropped from a full shadow queue)"
    )


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
    with pytest.raises(UnsafeArchive) as refused:
        unpack(_tar(tmp_path, link), tmp_path / "link")
    assert refused.value.reason == "link"
    with pytest.raises(UnsafeArchive) as refused:
        unpack(_tar(tmp_path, tarfile.TarInfo("../escape")), tmp_path / "esc")
    assert refused.value.reason == "unsafe_path"
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "esc").exists() and not (tmp_path / "esc.tmp").exists()
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 64)
    with pytest.raises(UnsafeArchive) as refused:
        unpack(tmp_path / "junk.tar", tmp_path / "junk")
    assert refused.value.reason == "not_archive"


def test_unpack_bounds_files_like_the_registry(tmp_path: Path) -> None:
    """The edge unpacks with the registry's checks: more files than a bundle may hold fail."""
    out = tmp_path / "many.tar"
    with tarfile.open(out, "w") as tf:
        for i in range(DEFAULT_MAX_FILES + 1):
            info = tarfile.TarInfo(f"f{i}")
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UnsafeArchive) as refused:
        unpack(out, tmp_path / "many")
    assert refused.value.reason == "too_many_files"


def test_unpack_strips_a_single_top_folder_and_reuses_it(tmp_path: Path) -> None:
    out = tmp_path / "top.tar"
    with tarfile.open(out, "w") as tf:
        for name in ("bundle/manifest.yaml", "bundle/model.onnx"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tf.addfile(info, io.BytesIO(b"ok"))
    folder = unpack(out, tmp_path / "top")
    assert folder == tmp_path / "top" / "bundle"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.yaml", "model.onnx"]
    assert unpack(out, tmp_path / "top") == folder
