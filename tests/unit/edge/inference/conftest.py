"""Fixtures for the inference tests: signed bundles around the models of inference_models."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgecloud.core.signing import generate_key, public_key_b64, sign_bundle
from edgecloud.edge.inference import InferenceBackend, InferenceSettings, load_bundle

BundleMaker = Callable[..., Path]


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return generate_key()


@pytest.fixture
def make_bundle(tmp_path: Path, signing_key: Ed25519PrivateKey) -> BundleMaker:
    counter = iter(range(1000))

    def make(
        onnx_model: onnx.ModelProto | bytes,
        inputs: dict[str, Any],
        outputs: dict[str, Any],
        decision: dict[str, Any] | None = None,
        sign: bool = True,
    ) -> Path:
        folder = tmp_path / f"bundle{next(counter)}"
        folder.mkdir()
        data = onnx_model if isinstance(onnx_model, bytes) else onnx_model.SerializeToString()
        (folder / "model.onnx").write_bytes(data)
        doc = {
            "name": "test-model",
            "version": "1.0.0",
            "runtime": "onnx",
            "file": "model.onnx",
            "sha256": hashlib.sha256(data).hexdigest(),
            "inputs": inputs,
            "outputs": outputs,
            "decision": decision or {"anomaly": {"score_above": 0.5}},
        }
        (folder / "manifest.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        if sign:
            sign_bundle(folder, signing_key)
        return folder

    return make


@pytest.fixture
def load(signing_key: Ed25519PrivateKey) -> Callable[[Path], InferenceBackend]:
    def go(folder: Path, **settings: Any) -> InferenceBackend:
        return load_bundle(
            folder,
            trusted_keys=[public_key_b64(signing_key)],
            settings=InferenceSettings(**settings),
        )

    return go
