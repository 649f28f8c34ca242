"""``load_bundle``: folder -> checked, verified, loaded backend (or a refusal with the reason)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgecloud.core.errors import SignatureError
from edgecloud.core.manifest import open_bundle
from edgecloud.core.signing import PublicKeyLike, check_file_digest, verify_bundle
from edgecloud.core.signing import trusted_keys as key_set
from edgecloud.edge.inference.port import InferenceBackend, ModelRefused
from edgecloud.edge.inference.settings import InferenceSettings

log = logging.getLogger(__name__)


def load_bundle(
    path: Path,
    *,
    trusted_keys: Sequence[PublicKeyLike] | Mapping[str, Ed25519PublicKey] | str | None = None,
    settings: InferenceSettings | None = None,
) -> InferenceBackend:
    """Open, verify and load the bundle in ``path``.

    Raises ``InvalidManifest`` (bad manifest or folder), ``SignatureError`` (file digest or
    signature), ``ModelRefused`` (the model cannot be run from this manifest). Keys: the given
    ones (objects, base64 text, paths, or a ``trusted_keys()`` mapping), else
    ``settings.operator_public_keys``.
    """
    settings = settings or InferenceSettings()
    bundle = open_bundle(path, settings.limits)
    if settings.require_signature:
        keys = key_set(trusted_keys if trusted_keys is not None else settings.operator_public_keys)
        if not keys:
            raise ModelRefused(
                "unsigned", "signatures are required but no operator public key is set"
            )
        sig = verify_bundle(bundle, keys)
        log.info("bundle %s signed by %s", bundle.manifest.ref, sig.key_id)
    else:
        check_file_digest(bundle)
        log.warning("bundle %s loaded WITHOUT a signature check", bundle.manifest.ref)
    if bundle.manifest.runtime == "onnx":
        from edgecloud.edge.inference.onnx_backend import OnnxBackend

        return OnnxBackend(bundle, settings)
    from edgecloud.edge.inference.openai_backend import OpenAIBackend

    return OpenAIBackend(bundle)


__all__ = ["SignatureError", "load_bundle"]
