"""The model agent's persisted state: one JSON file, replaced atomically (write, fsync,
rename, fsync the folder), so a kill -9 at any point leaves the old or the new file."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Installed:
    name: str
    version: str
    folder: str
    artifact_sha256: str | None = None
    rollout_id: str | None = None


@dataclass
class ModelAgentState:
    etag: str | None = None
    desired: dict[str, Any] | None = None
    active: Installed | None = None
    previous: Installed | None = None
    refused: dict[str, str] = field(default_factory=dict)  # artifact sha -> "phase: why"
    # artifact sha -> the rollout it was refused for (retried for another rollout only)
    refused_for: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ModelAgentState:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        return cls(
            etag=raw.get("etag"),
            desired=raw.get("desired"),
            active=Installed(**raw["active"]) if raw.get("active") else None,
            previous=Installed(**raw["previous"]) if raw.get("previous") else None,
            refused=dict(raw.get("refused") or {}),
            refused_for=dict(raw.get("refused_for") or {}),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        data = json.dumps(asdict(self), indent=2, sort_keys=True).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
