"""Bundles refused at load, each with its reason; settings and provider choice."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from inference_models import audio_model, features_model, fixed_batch_model, stateful_model

from edgecloud.adapters.onnx import select_providers
from edgecloud.core.errors import InvalidManifest, SignatureError
from edgecloud.core.signing import generate_key, public_key_b64, sign_bundle, trusted_keys
from edgecloud.edge.inference import InferenceBackend, InferenceSettings, ModelRefused, load_bundle

BundleMaker = Callable[..., Path]
Loader = Callable[..., InferenceBackend]
NAMES4 = {"from": "values", "names": ["a", "b", "c", "d"]}


def refused(load: Loader, folder: Path) -> ModelRefused:
    with pytest.raises(ModelRefused) as err:
        load(folder)
    return err.value


@pytest.mark.parametrize(
    ("model", "inputs", "outputs", "reason", "needle"),
    [
        (features_model, {}, {"score": "score"}, "missing", ""),  # manifest: inputs required
        (
            stateful_model,
            {"x": {"from": "values", "names": ["a", "b"]}},
            {"score": "score"},
            "input_not_covered",
            "h_in",
        ),
        (
            features_model,
            {"features": NAMES4, "extra": NAMES4},
            {"score": "score"},
            "unknown_input",
            "extra",
        ),
        (features_model, {"features": NAMES4}, {"score": "nope"}, "unknown_output", "nope"),
        (features_model, {"features": NAMES4}, {"score": "probs"}, "shape", "give an index"),
        (
            features_model,
            {"features": NAMES4},
            {"score": {"output": "probs", "index": 2}},
            "shape",
            "index 2",
        ),
        (
            features_model,
            {"features": {"from": "values", "names": ["a", "b", "c"]}},
            {"score": "score"},
            "shape",
            "3 named values",
        ),
        (
            features_model,
            {"features": {**NAMES4, "dtype": "float64"}},
            {"score": "score"},
            "dtype",
            "float64",
        ),
        (
            audio_model,
            {
                "audio": {"from": "array", "value": "audio"},
                "sample_rate": {"from": "constant", "value": 16000, "dtype": "int32"},
            },
            {"score": "level"},
            "dtype",
            "int32",
        ),
        (
            audio_model,
            {
                "audio": {"from": "array", "value": "audio"},
                "sample_rate": {"from": "constant", "value": "fast", "dtype": "int64"},
            },
            {"score": "level"},
            "dtype",
            "cannot be made",
        ),
        (
            audio_model,
            {
                "audio": {"from": "array", "value": "audio"},
                "sample_rate": {"from": "constant", "value": [1, 2, 3], "dtype": "int64"},
            },
            {"score": "level"},
            "shape",
            "constant",
        ),
        (
            stateful_model,
            {
                "x": {"from": "values", "names": ["a", "b"]},
                "h_in": {"from": "state", "output": "h_out", "initial": {"zeros": [4]}},
            },
            {"score": "score"},
            "shape",
            "initial state",
        ),
        (
            stateful_model,
            {
                "x": {"from": "values", "names": ["a", "b"]},
                "h_in": {"from": "state", "output": "score", "initial": {"zeros": [3]}},
            },
            {"score": "score"},
            "shape",
            "another shape",
        ),
        (
            stateful_model,
            {
                "x": {"from": "values", "names": ["a", "b"]},
                "h_in": {"from": "state", "output": "gone", "initial": {"zeros": [3]}},
            },
            {"score": "score"},
            "unknown_output",
            "gone",
        ),
        (
            fixed_batch_model,
            {"input_1:0": {"from": "array", "value": "v"}},
            {"score": "out/score:0"},
            None,
            "",
        ),
    ],
)
def test_model_refused_with_reason(
    make_bundle: BundleMaker,
    load: Loader,
    model: Any,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    reason: str | None,
    needle: str,
) -> None:
    if reason == "missing":
        with pytest.raises(InvalidManifest) as ierr:
            make_bundle(model(), inputs, outputs)
        assert ierr.value.reason == "missing_field"
        return
    folder = make_bundle(model(), inputs, outputs)
    if reason is None:  # an array into a fixed [1,3] input is fine: length 3 checked per reading
        load(folder).close()
        return
    err = refused(load, folder)
    assert err.reason == reason, err
    assert needle in err.detail


def test_broken_model_file_is_refused(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(b"\x08\x07this is not a protobuf graph", {"x": NAMES4}, {"score": "s"})
    err = refused(load, folder)
    assert err.reason == "unloadable" and "cannot load" in err.detail


def test_truncated_model_file_is_refused(make_bundle: BundleMaker, load: Loader) -> None:
    data = features_model().SerializeToString()
    folder = make_bundle(data[: len(data) // 2], {"features": NAMES4}, {"score": "score"})
    assert refused(load, folder).reason == "unloadable"


def test_tampered_file_is_refused(make_bundle: BundleMaker, load: Loader) -> None:
    folder = make_bundle(features_model(), {"features": NAMES4}, {"score": "score"})
    other = stateful_model().SerializeToString()
    (folder / "model.onnx").write_bytes(other)
    with pytest.raises(SignatureError, match="tampered"):
        load(folder)


def test_edited_manifest_sha_is_refused(make_bundle: BundleMaker, load: Loader) -> None:
    """Swapping the file AND fixing the manifest's sha256 still fails: the signature covers both."""
    folder = make_bundle(features_model(), {"features": NAMES4}, {"score": "score"})
    other = features_model()
    other.graph.initializer[0].raw_data = bytes(len(other.graph.initializer[0].raw_data))
    data = other.SerializeToString()
    (folder / "model.onnx").write_bytes(data)
    doc = yaml.safe_load((folder / "manifest.yaml").read_text())
    doc["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SignatureError, match="does not verify"):
        load(folder)


def test_unknown_signing_key_and_unsigned(make_bundle: BundleMaker, tmp_path: Path) -> None:
    folder = make_bundle(features_model(), {"features": NAMES4}, {"score": "score"})
    stranger = [public_key_b64(generate_key())]
    with pytest.raises(SignatureError, match="not a trusted key"):
        load_bundle(folder, trusted_keys=stranger, settings=InferenceSettings())
    with pytest.raises(ModelRefused, match="no operator public key"):
        load_bundle(folder, trusted_keys=[], settings=InferenceSettings())
    unsigned = make_bundle(features_model(), {"features": NAMES4}, {"score": "score"}, sign=False)
    with pytest.raises(SignatureError, match="unsigned"):
        load_bundle(unsigned, trusted_keys=stranger, settings=InferenceSettings())
    # without signatures required, the sha256 is still checked
    b = load_bundle(unsigned, settings=InferenceSettings(require_signature=False))
    b.close()
    (unsigned / "model.onnx").write_bytes(b"changed")
    with pytest.raises(SignatureError, match="tampered"):
        load_bundle(unsigned, settings=InferenceSettings(require_signature=False))


def test_keys_from_settings_env_and_mapping(
    make_bundle: BundleMaker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = generate_key()
    folder = make_bundle(features_model(), {"features": NAMES4}, {"score": "score"}, sign=False)
    sign_bundle(folder, key)
    monkeypatch.setenv(
        "EDGECLOUD_OPERATOR_PUBLIC_KEYS", f"{public_key_b64(generate_key())},{public_key_b64(key)}"
    )
    from edgecloud.edge.settings import EdgeSettings

    # the environment is read by the role's settings tree, which builds the inference config
    load_bundle(folder, settings=EdgeSettings().inference_settings()).close()
    with pytest.raises(ModelRefused):  # a bare config object reads no environment
        load_bundle(folder, settings=InferenceSettings())
    load_bundle(
        folder, trusted_keys=trusted_keys([public_key_b64(key)]), settings=InferenceSettings()
    ).close()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_ORT_PROVIDERS", "CUDAExecutionProvider, CPUExecutionProvider")
    monkeypatch.setenv("EDGECLOUD_ORT_INTRA_OP_THREADS", "2")
    monkeypatch.setenv("EDGECLOUD_REQUIRE_SIGNATURE", "false")
    from edgecloud.edge.settings import EdgeSettings

    s = EdgeSettings().inference_settings()  # the role's tree reads the env, builds the config
    assert InferenceSettings().ort_intra_op_threads == 1  # the config object reads none
    assert s.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert s.ort_intra_op_threads == 2 and s.ort_inter_op_threads == 1
    assert not s.require_signature and not s.ort_allow_spinning
    assert InferenceSettings(ort_providers="auto").providers == "auto"


def test_provider_selection() -> None:
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("auto", gpu) == gpu
    assert select_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert select_providers(["CUDAExecutionProvider"], gpu) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert select_providers(["TensorrtExecutionProvider"], ["CPUExecutionProvider"]) == [
        "CPUExecutionProvider"
    ]


def test_loaded_backend_reports_provider(make_bundle: BundleMaker, load: Loader) -> None:
    b = load(
        make_bundle(features_model(), {"features": NAMES4}, {"score": "score"}),
        ort_providers="CPUExecutionProvider",
    )
    assert b.providers == ["CPUExecutionProvider"]  # type: ignore[attr-defined]
    b.close()
