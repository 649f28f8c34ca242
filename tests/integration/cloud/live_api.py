"""``edgecloud cloud api`` as its own process (real uvicorn, real sockets) on a fresh Postgres
database, with a token of each scope and a registered operator key: for the tests that must
go over real HTTP (slow clients, access log, crafted uploads)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from edgecloud.bench import rest
from edgecloud.cloud import auth
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.core.signing import generate_key, public_key_b64


@dataclass
class LiveApi:
    base: str
    port: int
    tokens: dict[str, str]
    key: Ed25519PrivateKey
    log: Path
    store: Path

    def h(self, scope: str = "operate") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}

    def upload(self, data: bytes, name: str = "bundle.tar.gz") -> httpx.Response:
        return httpx.post(
            f"{self.base}/api/v1/models",
            files={"bundle": (name, data)},
            headers=self.h("operate"),
            timeout=60,
        )


@contextmanager
def live_api(pg_url: str, tmp_path: Path, port: int | None = None, **env: str) -> Iterator[LiveApi]:
    migrate(pg_url)
    engine = make_engine(pg_url)
    tokens: dict[str, str] = {}
    with Session(engine) as session:
        for scope in ("read", "operate", "admin"):
            tokens[scope], _ = auth.create_token(session, scope, scope)  # type: ignore[arg-type]
    engine.dispose()
    store = tmp_path / "store"
    saved = {k: os.environ.get(k) for k in [*env, "EDGECLOUD_REGISTRY_DIR"]}
    os.environ.update({"EDGECLOUD_REGISTRY_DIR": str(store), **env})
    port = port or rest._free_port()
    log = tmp_path / "api.log"
    try:
        proc = rest.start_api(pg_url, port, log)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        api = LiveApi(f"http://127.0.0.1:{port}", port, tokens, generate_key(), log, store)
        res = httpx.post(
            f"{api.base}/api/v1/operator-keys",
            json={"public_key": public_key_b64(api.key), "name": "test operator"},
            headers=api.h("admin"),
            timeout=30,
        )
        assert res.status_code == 201, res.text
        yield api
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "Traceback" not in log.read_text(), log.read_text()[-4000:]
