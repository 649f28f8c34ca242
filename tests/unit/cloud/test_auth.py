"""Tokens: shape, hashing, the scope order, and verification against a real (SQLite) table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from edgecloud.cloud import auth
from edgecloud.cloud.db import ApiToken, make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.core.errors import ValidationFailed


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    migrate(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def test_tokens_are_random_prefixed_and_hashed() -> None:
    a, b = auth.generate_token("read"), auth.generate_token("read")
    assert a != b and a.startswith("ecl_read_") and len(a) == len("ecl_read_") + 43
    assert auth.hash_token(a) == auth.hash_token(a) != auth.hash_token(b)
    assert len(auth.hash_token(a)) == 64 and a not in auth.hash_token(a)
    with pytest.raises(ValidationFailed):
        auth.generate_token("root")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("held", "needed", "ok"),
    [
        ("read", "read", True),
        ("read", "operate", False),
        ("read", "admin", False),
        ("operate", "read", True),
        ("operate", "operate", True),
        ("operate", "admin", False),
        ("admin", "read", True),
        ("admin", "operate", True),
        ("admin", "admin", True),
        ("node", "node", True),
        ("node", "read", False),
        ("admin", "node", False),
        ("bogus", "read", False),
    ],
)
def test_scope_order(held: str, needed: str, ok: bool) -> None:
    assert auth.scope_allows(held, needed) is ok


def test_verify_create_revoke(engine: Engine) -> None:
    with Session(engine) as session:
        token, row = auth.create_token(session, "operate", "ci")
        node_token, node_row = auth.create_token(session, "node", node_id="edge-a")
        stored = session.get(ApiToken, row.id)
        assert stored is not None and stored.token_hash == auth.hash_token(token)
    verifier = auth.TokenVerifier(engine, cache_ttl_s=60)
    who = verifier.verify(token)
    assert who is not None and (who.scope, who.name) == ("operate", "ci")
    assert who.allows("read") and not who.allows("admin")
    node = verifier.verify(node_token)
    assert node is not None and node.node_id == "edge-a" and not node.allows("read")
    assert verifier.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert verifier.verify("Bearer junk") is None and verifier.verify("") is None
    with Session(engine) as session:
        assert session.get(ApiToken, row.id).last_used_at is not None  # type: ignore[union-attr]
        assert auth.revoke_token(session, row.id) is True
        assert auth.revoke_token(session, row.id) is False  # already revoked
    assert verifier.cached(token) is not None  # the cache holds it until its TTL...
    verifier.forget()  # ...or until this process revokes through the API
    assert verifier.verify(token) is None
    assert node_row.revoked_at is None


def test_node_tokens_need_a_node_and_others_must_not_have_one(engine: Engine) -> None:
    with Session(engine) as session:
        with pytest.raises(ValidationFailed, match="node id"):
            auth.create_token(session, "node")
        with pytest.raises(ValidationFailed):
            auth.create_token(session, "read", node_id="edge-a")
