"""Manifest parsing and bundle folder checks: each bad manifest gets its own reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from edgecloud.core.errors import InvalidManifest
from edgecloud.core.manifest import (
    ArrayInput,
    ConstantInput,
    ManifestLimits,
    StateInput,
    ValuesInput,
    Zeros,
    open_bundle,
    parse_manifest,
)

SHA = "ab" * 32


def base(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "name": "sensor-anomaly",
        "version": "1.0.0",
        "runtime": "onnx",
        "file": "model.onnx",
        "sha256": SHA,
        "inputs": {"features": {"from": "values", "names": ["temperature", "pressure"]}},
        "outputs": {"score": "score"},
        "decision": {"anomaly": {"score_above": 0.7}},
    }
    doc.update(over)
    return doc


def dump(doc: dict[str, object]) -> str:
    return yaml.safe_dump(doc)


def reason(text: str, limits: ManifestLimits | None = None) -> str:
    with pytest.raises(InvalidManifest) as err:
        parse_manifest(text, limits)
    return err.value.reason


def test_every_input_kind_parses() -> None:
    doc = base(
        inputs={
            "x": {"from": "values", "names": ["a", "b"], "dtype": "float64"},
            "audio": {"from": "array", "value": "audio"},
            "sr": {"from": "constant", "value": 16000, "dtype": "int64"},
            "mask": {"from": "constant", "value": [[True, False]], "dtype": "bool"},
            "h": {"from": "state", "output": "h_out", "initial": {"zeros": [8]}},
            "c": {"from": "state", "output": "c_out", "initial": [0.5, 0.25]},
        },
        outputs={
            "score": {"output": "s", "index": 1},
            "label": {"output": "probs", "reduce": "argmax", "classes": ["ok", "bad"]},
            "confidence": {"output": "probs", "reduce": "max"},
        },
        decision={
            "anomaly": {"label_in": ["bad"], "score_above": 0.9},
            "escalate": {"confidence_below": 0.6},
        },
    )
    m, raw = parse_manifest(dump(doc))
    assert raw == doc
    assert isinstance(m.inputs["x"], ValuesInput) and m.inputs["x"].names == ["a", "b"]
    assert isinstance(m.inputs["audio"], ArrayInput)
    sr = m.inputs["sr"]
    assert isinstance(sr, ConstantInput) and sr.value == 16000 and sr.dtype == "int64"
    h = m.inputs["h"]
    assert isinstance(h, StateInput) and isinstance(h.initial, Zeros) and h.initial.zeros == [8]
    assert m.state_outputs() == {"h_out": "h", "c_out": "c"}
    assert m.outputs.score is not None and m.outputs.score.index == 1
    assert m.decision.anomaly.holds(0.95, None, None)
    assert m.decision.anomaly.holds(0.1, "bad", None)
    assert not m.decision.anomaly.holds(0.1, "ok", None)
    assert m.decision.escalate is not None and m.decision.escalate.holds(None, None, 0.5)
    assert m.ref == "sensor-anomaly:1.0.0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed", "bad_yaml"),
        ("- a\n- b\n", "not_mapping"),
        (dump({k: v for k, v in base().items() if k != "decision"}), "missing_field"),
        (dump(base(runtime="tensorflow")), "invalid_field"),
        (dump(base(version="one")), "invalid_field"),
        (dump(base(name="Bad Name!")), "invalid_field"),
        (dump(base(sha256="xyz")), "invalid_field"),
        (dump(base(inputs={"x": {"from": "magic"}})), "invalid_field"),
        (dump(base(inputs={"x": {"from": "values", "names": []}})), "invalid_field"),
        (
            dump(base(inputs={"x": {"from": "constant", "value": 1, "dtype": "int128"}})),
            "invalid_field",
        ),
        (dump(base(inputs={"x": {"from": "state", "output": "y"}})), "missing_field"),
        (dump(base(inputs={"x": {"from": "values", "names": ["a"], "typo": 1}})), "invalid_field"),
        (dump(base(decision={"anomaly": {}})), "invalid_field"),
        (
            dump(base(outputs={"score": {"output": "s", "index": 0, "reduce": "max"}})),
            "invalid_field",
        ),
        (dump(base(outputs={"label": "l"})), "inconsistent"),  # score_above, no score
        (dump(base(outputs={})), "inconsistent"),
        (
            dump(
                base(
                    decision={"anomaly": {"score_above": 1}, "escalate": {"confidence_below": 0.5}}
                )
            ),
            "inconsistent",
        ),
        (dump(base(file=None)), "missing_field"),
        (dump(base(inputs={})), "missing_field"),
        (dump(base(runtime="openai", file=None, sha256=None)), "missing_field"),
    ],
)
def test_bad_manifest_reasons(text: str, expected: str) -> None:
    assert reason(text) == expected


def test_manifest_size_limit() -> None:
    doc = base(metadata={"blob": "x" * 2000})
    assert reason(dump(doc), ManifestLimits(max_manifest_bytes=1000)) == "too_large"
    parse_manifest(dump(doc), ManifestLimits(max_manifest_bytes=4000))


def test_input_count_limit() -> None:
    inputs = {f"i{n}": {"from": "values", "names": ["a"]} for n in range(5)}
    assert reason(dump(base(inputs=inputs)), ManifestLimits(max_inputs=4)) == "too_large"


def test_openai_runtime_needs_no_file() -> None:
    doc = base(
        runtime="openai", file=None, sha256=None, inputs={}, outputs={},
        openai={"model": "meta/llama-3.1-8b-instruct", "prompt": "values: {values}"},
        decision={"anomaly": {"score_above": 0.5}, "escalate": {"label_in": ["critical"]}},
    )  # fmt: skip
    m, _ = parse_manifest(dump({k: v for k, v in doc.items() if v is not None}))
    assert m.openai is not None and m.openai.concurrency == 4


def write_bundle(folder: Path, **over: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.yaml").write_text(dump(base(**over)))
    (folder / "model.onnx").write_bytes(b"\x08\x07")
    return folder


def bundle_reason(folder: Path, limits: ManifestLimits | None = None) -> str:
    with pytest.raises(InvalidManifest) as err:
        open_bundle(folder, limits)
    return err.value.reason


def test_open_bundle_locates_file(tmp_path: Path) -> None:
    b = open_bundle(write_bundle(tmp_path / "b"))
    assert b.model_path == (tmp_path / "b" / "model.onnx").resolve()
    assert b.signature_path.name == "signature.json"


@pytest.mark.parametrize(
    "name", ["../model.onnx", "/etc/passwd", "sub/../../x.onnx", "C:/x", ".", "a\\b"]
)
def test_paths_leaving_the_bundle_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "model.onnx").write_bytes(b"outside")
    assert bundle_reason(write_bundle(tmp_path / "b", file=name)) == "unsafe_path"


def test_symlink_out_of_bundle_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.onnx"
    secret.write_bytes(b"outside")
    folder = write_bundle(tmp_path / "b", file="link.onnx")
    os.symlink(secret, folder / "link.onnx")
    assert bundle_reason(folder) == "unsafe_path"


def test_symlink_inside_bundle_is_fine(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b", file="link.onnx")
    os.symlink(folder / "model.onnx", folder / "link.onnx")
    assert open_bundle(folder).model_path == (folder / "model.onnx").resolve()


def test_missing_manifest_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert bundle_reason(tmp_path / "empty") == "not_found"
    folder = write_bundle(tmp_path / "b", file="other.onnx")
    assert bundle_reason(folder) == "file_missing"


def test_model_file_size_limit(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b")
    (folder / "model.onnx").write_bytes(b"\0" * 2048)
    assert bundle_reason(folder, ManifestLimits(max_file_bytes=1024)) == "too_large"
