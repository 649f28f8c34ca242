"""Registry operations on a session: operator keys, register an uploaded bundle, look up.

Blocking (database and file I/O): routes call these through ``in_thread``.
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session, col, select

from edgecloud.cloud.registry.store import ArtifactStore
from edgecloud.cloud.registry.tables import ModelVersion, OperatorKey
from edgecloud.cloud.registry.validate import check_bundle
from edgecloud.core.archive import extract
from edgecloud.core.errors import SignatureError, ValidationFailed
from edgecloud.core.signing import key_id, parse_public_key, public_key_b64


@dataclass(frozen=True)
class Limits:
    max_bundle_bytes: int
    max_files: int


class Conflict(ValidationFailed):
    """The (name, version) is registered already with other content."""


def _key_from_text(text: str) -> Ed25519PublicKey:
    """Base64 of the 32 raw bytes, or PEM: never a path (the text comes from a request)."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            return parse_public_key(text.encode())
        raw = base64.b64decode(text, validate=True)
    except (SignatureError, ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as exc:
        raise ValidationFailed("bad_key", f"not an ed25519 public key: {exc}") from exc
    if len(raw) != 32:
        raise ValidationFailed("bad_key", f"an ed25519 public key is 32 bytes, not {len(raw)}")
    return parse_public_key(raw)


def add_key(
    session: Session, public_key: str, name: str = "", *, allow_path: bool = False
) -> OperatorKey:
    """Register (or re-enable) an operator public key; idempotent. ``allow_path``: the text
    may also name a key file (operator settings only, never request bodies)."""
    if allow_path:
        try:
            key = parse_public_key(public_key.strip())
        except (SignatureError, ValueError, OSError) as exc:
            raise ValidationFailed("bad_key", f"not an ed25519 public key: {exc}") from exc
    else:
        key = _key_from_text(public_key)
    kid = key_id(key)
    row = session.get(OperatorKey, kid)
    if row is None:
        row = OperatorKey(key_id=kid, public_key=public_key_b64(key), name=name or kid)
        session.add(row)
    else:
        row.revoked_at = None
    session.commit()
    session.refresh(row)
    return row


def trusted(session: Session) -> dict[str, Ed25519PublicKey]:
    rows = session.exec(select(OperatorKey).where(col(OperatorKey.revoked_at).is_(None))).all()
    return {r.key_id: parse_public_key(r.public_key) for r in rows}


def list_keys(session: Session) -> Sequence[OperatorKey]:
    return session.exec(select(OperatorKey).order_by(col(OperatorKey.created_at))).all()


def register(
    session: Session, store: ArtifactStore, upload: Path, limits: Limits, uploader: str
) -> tuple[ModelVersion, bool]:
    """Extract, check and store an uploaded archive; returns (row, created).

    Uploading the same signed bundle again is a no-op (``created`` False); another bundle
    under a registered name and version is refused (``version_exists``).
    """
    with tempfile.TemporaryDirectory(prefix="bundle-", dir=store.root) as tmp:
        folder = extract(
            upload, Path(tmp), max_bytes=limits.max_bundle_bytes, max_files=limits.max_files
        )
        checked = check_bundle(folder, trusted(session), max_file_bytes=limits.max_bundle_bytes)
        manifest = checked.bundle.manifest
        existing = session.get(ModelVersion, (manifest.name, manifest.version))
        assert checked.signature is not None
        signature = json.loads(checked.signature.to_json())
        if existing is not None:
            if existing.signature.get("digest") == signature["digest"]:
                return existing, False
            raise Conflict(
                "version_exists",
                f"{manifest.ref} is registered already with other content; bump the version",
            )
        digest, size = store.put_bundle(checked.bundle)
    row = ModelVersion(
        name=manifest.name,
        version=manifest.version,
        runtime=manifest.runtime,
        description=manifest.description,
        file_sha256=checked.file_sha256,
        artifact_sha256=digest,
        artifact_size=size,
        key_id=checked.signature.key_id,
        manifest=checked.bundle.raw,
        signature=signature,
        io=checked.io,
        uploaded_by=uploader,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row, True


def list_models(session: Session, name: str | None = None) -> Sequence[ModelVersion]:
    query = select(ModelVersion).order_by(col(ModelVersion.name), col(ModelVersion.created_at))
    if name is not None:
        query = query.where(col(ModelVersion.name) == name)
    return session.exec(query).all()


def get_model(session: Session, name: str, version: str) -> ModelVersion | None:
    return session.get(ModelVersion, (name, version))
