"""The push-time check: the registry builds the edge's input plan and output map from the ONNX
graph and refuses with the reason the edge would give; ``fill_sha256`` for ``model push``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgecloud.bench.rollout_models import linear_bundle
from edgecloud.bench.tensor_models import write_bundle
from edgecloud.cloud.registry.validate import check_bundle
from edgecloud.core.errors import ValidationFailed
from edgecloud.core.signing import fill_sha256, generate_key, public_key_b64
from edgecloud.edge.inference import InferenceSettings, ModelRefused, load_bundle

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("pair", {"inputs": {"emb": {"from": "tensor", "value": "emb"}}}, "input_not_covered"),
    ("pair", {"inputs": {"emb": {"from": "tensor", "value": "emb"},
                         "mask": {"from": "constant", "value": 1, "dtype": "int32"}}}, "dtype"),
    ("pair", {"inputs": {"emb": {"from": "tensor", "value": "emb"},
                         "mask": {"from": "tensor", "value": "mask"},
                         "extra": {"from": "values", "names": ["a"]}}}, "unknown_input"),
    ("image", {"outputs": {"label": {"output": "nope"}}}, "unknown_output"),
    ("image", {"outputs": {"label": {"output": "probs"}}}, "shape"),
    ("image", {"inputs": {"x": {"from": "array", "value": "image"}}}, "shape"),
    ("image", {"inputs": {"x": {"from": "tensor", "value": "image", "layout": "HWC",
                                "preprocess": {"mean": [0.5, 0.5]}}}}, "shape"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "changes", "reason"), BAD)
def test_push_refuses_with_the_reason_the_edge_gives(
    tmp_path: Path, kind: str, changes: dict[str, Any], reason: str
) -> None:
    key = generate_key()
    folder = write_bundle(tmp_path / "b", kind, key, changes=changes)
    with pytest.raises(ModelRefused) as edge:
        load_bundle(folder, trusted_keys=[public_key_b64(key)], settings=InferenceSettings())
    with pytest.raises(ValidationFailed) as cloud:
        check_bundle(folder, None)
    assert edge.value.reason == cloud.value.reason == reason
    assert edge.value.detail in cloud.value.detail
    assert "every edge node would refuse tensor-" in cloud.value.detail


@pytest.mark.parametrize("kind", ["image", "heatmap", "pair"])
def test_the_corpus_passes_the_push_check(tmp_path: Path, kind: str) -> None:
    checked = check_bundle(write_bundle(tmp_path / kind, kind, None), None)
    assert (
        checked.file_sha256
        == hashlib.sha256((tmp_path / kind / "model.onnx").read_bytes()).hexdigest()
    )


def test_an_unloadable_model_still_passes_the_push_check(tmp_path: Path) -> None:
    """What only the runtime can tell (an operator it lacks) is the edge's to refuse."""
    folder = linear_bundle(tmp_path / "b", "1.0.0", None, broken=True)
    assert check_bundle(folder, None).io["outputs"] == ["score (float32 [batch,1])"]


def test_fill_sha256_writes_a_missing_digest_only(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b", "pair", None)
    path = folder / "manifest.yaml"
    doc = yaml.safe_load(path.read_text())
    want = doc.pop("sha256")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert fill_sha256(folder) == want
    assert yaml.safe_load(path.read_text())["sha256"] == want
    assert fill_sha256(folder) is None  # present now: nothing to do
    path.write_text(path.read_text().replace(want, "a" * 64))
    assert fill_sha256(folder) is None  # wrong: left for the mismatch check to refuse
    with pytest.raises(ValidationFailed) as info:
        check_bundle(folder, None)
    assert info.value.reason == "sha256_mismatch"
