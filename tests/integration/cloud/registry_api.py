"""Fixture helpers of the registry / rollout API tests: the real app (lifespan, migrations)
on a fresh Postgres database, with tokens of every scope."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlmodel import Session

from edgecloud.cloud import auth
from edgecloud.cloud.api.app import create_app
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.settings import CloudSettings
from edgecloud.core.archive import pack_folder
from edgecloud.core.signing import generate_key, public_key_b64


@dataclass
class Api:
    client: TestClient
    url: str
    tokens: dict[str, str]
    key: Ed25519PrivateKey
    store: Path

    def h(self, scope: str = "operate") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}

    def node_token(self, node_id: str) -> str:
        engine = make_engine(self.url)
        try:
            with Session(engine) as session:
                token, _ = auth.create_token(session, "node", node_id, node_id)
        finally:
            engine.dispose()
        return token

    def push(self, folder: Path, scope: str = "operate") -> tuple[int, dict[str, object]]:
        return self.upload(pack_folder(folder), "bundle.tar.gz", scope)

    def upload(
        self, data: bytes, name: str, scope: str = "operate"
    ) -> tuple[int, dict[str, object]]:
        res = self.client.post(
            "/api/v1/models", files={"bundle": (name, data)}, headers=self.h(scope)
        )
        return res.status_code, res.json()


@contextmanager
def running_api(pg_url: str, store: Path, monkeypatch: object, **env: str) -> Iterator[Api]:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("EDGECLOUD_REGISTRY_DIR", str(store))
    monkeypatch.setenv("EDGECLOUD_ROLLOUT_TICK_S", "0.1")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    app = create_app(CloudSettings(database_url=pg_url))
    with TestClient(app) as client:
        engine = make_engine(pg_url)
        tokens: dict[str, str] = {}
        with Session(engine) as session:
            for scope in ("read", "operate", "admin"):
                tokens[scope], _ = auth.create_token(session, scope, scope)  # type: ignore[arg-type]
        engine.dispose()
        key = generate_key()
        api = Api(client, pg_url, tokens, key, store)
        res = client.post(
            "/api/v1/operator-keys",
            json={"public_key": public_key_b64(key), "name": "test operator"},
            headers=api.h("admin"),
        )
        assert res.status_code == 201, res.text
        yield api


def tar_with(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()
