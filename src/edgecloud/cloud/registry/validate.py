"""Checks a bundle folder before it is registered (and before ``model push`` uploads it).

Each failure is a ``ValidationFailed`` with a stable ``reason``: the manifest's own reasons
(``core.manifest.REASONS``), ``link`` (a symlink in the bundle), ``onnx_invalid`` (the ONNX
checker refused the file), ``external_data`` (tensors kept outside the ONNX file; refused,
their bytes would not be covered by the signature), ``unsafe_path`` (external data that
would leave the bundle), ``sha256_mismatch``, ``unsigned``, ``bad_signature``, ``unknown_key``,
and the edge's own refusal reasons (``core.inference.REFUSAL_REASONS``: ``input_not_covered``,
``unknown_input``, ``unknown_output``, ``dtype``, ``shape``): the input plan and output map
the edge builds at load are built here from the ONNX graph's declared inputs and outputs, so
nothing is registered that every edge node would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecloud.adapters.onnx import check_model, describe_model, external_data_locations
from edgecloud.core.errors import InvalidManifest, ModelError, SignatureError, ValidationFailed
from edgecloud.core.inference import ModelRefused
from edgecloud.core.manifest import Bundle, ManifestLimits, open_bundle, safe_member
from edgecloud.core.outputs import OutputMap
from edgecloud.core.plan import build_plan
from edgecloud.core.signing import Signature, TrustedKeys, check_file_digest, verify_bundle


@dataclass(frozen=True)
class CheckedBundle:
    bundle: Bundle
    signature: Signature | None
    file_sha256: str | None
    io: dict[str, Any]


def _no_links(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_symlink():
            raise ValidationFailed("link", f"{path.relative_to(folder)} is a symlink")


def _check_onnx(bundle: Bundle) -> dict[str, Any]:
    path = bundle.model_path
    assert path is not None
    try:
        locations = external_data_locations(path)
        for location in locations:
            try:
                safe_member(bundle.folder, location)
            except InvalidManifest as exc:
                raise ValidationFailed(
                    "unsafe_path", f"external data {location!r} leaves the bundle"
                ) from exc
        if locations:
            raise ValidationFailed(
                "external_data",
                f"{path.name} keeps tensors in external files ({', '.join(locations[:3])}); "
                "save the model with all tensors inside the ONNX file",
            )
        check_model(path)
        inputs, outputs = describe_model(path)
    except ModelError as exc:  # the ONNX libraries name the file by its absolute path
        detail = str(exc)
        for folder in (bundle.folder.resolve(), bundle.folder):
            detail = detail.replace(f"{folder}/", "")
        raise ValidationFailed("onnx_invalid", detail) from exc
    try:
        build_plan(bundle.manifest, inputs, outputs)
        OutputMap.build(bundle.manifest, outputs)
    except ModelRefused as exc:
        raise ValidationFailed(
            exc.reason, f"every edge node would refuse {bundle.manifest.ref}: {exc.detail}"
        ) from exc
    return {
        "inputs": [i.describe() for i in inputs],
        "outputs": [o.describe() for o in outputs],
    }


def _check_signature(bundle: Bundle, trusted: TrustedKeys) -> Signature:
    if not bundle.signature_path.is_file():
        raise ValidationFailed("unsigned", f"{bundle.manifest.ref}: no signature.json")
    try:
        claimed = Signature.from_json(bundle.signature_path.read_bytes())
    except SignatureError as exc:
        raise ValidationFailed("bad_signature", str(exc)) from exc
    if claimed.key_id not in trusted:
        raise ValidationFailed(
            "unknown_key",
            f"{bundle.manifest.ref} is signed by {claimed.key_id}, which is not a registered "
            "operator key (POST /api/v1/operator-keys or EDGECLOUD_OPERATOR_PUBLIC_KEYS)",
        )
    try:
        return verify_bundle(bundle, trusted)
    except SignatureError as exc:
        raise ValidationFailed("bad_signature", str(exc)) from exc


def check_bundle(
    folder: Path,
    trusted: TrustedKeys | None,
    *,
    max_file_bytes: int = 256 * 1024 * 1024,
) -> CheckedBundle:
    """Everything but the signature when ``trusted`` is None (``model push`` before signing)."""
    _no_links(folder)
    bundle = open_bundle(folder, ManifestLimits(max_file_bytes=max_file_bytes))
    try:
        digest = check_file_digest(bundle)
    except SignatureError as exc:
        raise ValidationFailed("sha256_mismatch", str(exc)) from exc
    io = _check_onnx(bundle) if bundle.manifest.runtime == "onnx" else {}
    signature = _check_signature(bundle, trusted) if trusted is not None else None
    return CheckedBundle(bundle=bundle, signature=signature, file_sha256=digest, io=io)
