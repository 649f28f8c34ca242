"""The artifact store: immutable files named by their sha256, ``<dir>/ab/abcdef...``.

An artifact is the deterministic tar of a checked bundle (manifest.yaml, the model file,
signature.json). Writes go to a temporary file in the same folder, are fsync'd, then renamed,
so a crash never leaves a partial artifact under a digest name; storing the same bundle twice
stores it once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, cast

from edgecloud.core.archive import pack
from edgecloud.core.manifest import MANIFEST_FILE, SIGNATURE_FILE, Bundle


class _HashingWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)

    def tell(self) -> int:
        return self.size


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put_bundle(self, bundle: Bundle) -> tuple[str, int]:
        """Store the artifact of ``bundle``; returns (sha256, size)."""
        files = {
            MANIFEST_FILE: bundle.folder / MANIFEST_FILE,
            SIGNATURE_FILE: bundle.signature_path,
        }
        if bundle.model_path is not None and bundle.manifest.file is not None:
            files[Path(bundle.manifest.file).as_posix()] = bundle.model_path
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                writer = _HashingWriter(f)
                pack(files, cast(IO[bytes], writer))
                f.flush()
                os.fsync(f.fileno())
            digest = writer.hash.hexdigest()
            final = self.path(digest)
            final.parent.mkdir(exist_ok=True)
            if final.exists():
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
            return digest, writer.size
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
