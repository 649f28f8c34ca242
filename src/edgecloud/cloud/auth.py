"""API tokens: creation, hashing, verification and the scope order.

A token is ``ecl_<scope>_<43 chars of base64url>`` (32 random bytes). Only its sha256 (hex) is
stored, in ``api_tokens.token_hash``; the clear token is shown once, when it is created. The
scope in the prefix is a hint for humans; the stored row decides.

Scopes: ``read`` < ``operate`` < ``admin`` (each includes the ones before it). ``node`` is apart:
an edge node's token, which may read its own desired state and nothing else.

``TokenVerifier`` caches a verified token for a few seconds so that a dashboard polling at a
high rate does not cost a database round trip per request; a revoked token therefore stops
working within ``cache_ttl_s`` (5 s by default). ``last_used_at`` is written at most once a
minute per token for the same reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from edgecloud.cloud.db import ApiToken
from edgecloud.core.errors import ValidationFailed

Scope = Literal["read", "operate", "admin", "node"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
_RANK: dict[str, int] = {"read": 1, "operate": 2, "admin": 3}
TOKEN_PREFIX = "ecl_"
_TOKEN_BYTES = 32


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token row's id, name, scope and (for ``node``) its node id."""

    token_id: uuid.UUID
    name: str
    scope: Scope
    node_id: str | None = None

    def allows(self, needed: Scope) -> bool:
        return scope_allows(self.scope, needed)


def scope_allows(held: str, needed: str) -> bool:
    """``admin`` allows ``operate`` and ``read``; ``node`` allows only ``node``."""
    if held == "node" or needed == "node":
        return held == needed
    return _RANK.get(held, 0) >= _RANK.get(needed, 99)


def generate_token(scope: Scope) -> str:
    if scope not in SCOPES:
        raise ValidationFailed("bad_scope", f"scope must be one of {', '.join(SCOPES)}")
    raw = base64.urlsafe_b64encode(secrets.token_bytes(_TOKEN_BYTES)).rstrip(b"=").decode()
    return f"{TOKEN_PREFIX}{scope}_{raw}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_token(token: str) -> bool:
    """Cheap shape check done before any database work (rejects junk headers early)."""
    return token.startswith(TOKEN_PREFIX) and 20 <= len(token) <= 200 and token.isascii()


def create_token(
    session: Session, scope: Scope, name: str = "", node_id: str | None = None
) -> tuple[str, ApiToken]:
    """Store a new token (hashed) and return the clear token, shown once, and its row."""
    if scope == "node" and not node_id:
        raise ValidationFailed("node_id_required", "a node token needs the node id it acts for")
    if scope != "node" and node_id:
        raise ValidationFailed("node_id_unexpected", "only node tokens carry a node id")
    token = generate_token(scope)
    row = ApiToken(
        name=name or f"{scope}-token",
        scope=scope,
        node_id=node_id,
        token_hash=hash_token(token),
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return token, row


def revoke_token(session: Session, token_id: uuid.UUID) -> bool:
    result = session.execute(
        update(ApiToken)
        .where(col(ApiToken.id) == token_id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0))


class TokenVerifier:
    """Looks tokens up by hash, with a short positive cache (see the module docstring)."""

    def __init__(self, engine: Engine, cache_ttl_s: float = 5.0, touch_every_s: float = 60.0):
        self._engine = engine
        self._ttl = cache_ttl_s
        self._touch_every = touch_every_s
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._touched: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> Principal | None:
        """The principal if the token was verified less than ``cache_ttl_s`` ago (no I/O)."""
        hit = self._cache.get(hash_token(token)) if looks_like_token(token) else None
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def verify(self, token: str) -> Principal | None:
        """Look the token up (blocking I/O on a cache miss: call it from a worker thread)."""
        if not looks_like_token(token):
            return None
        principal = self.cached(token)
        if principal is not None:
            return principal
        digest = hash_token(token)
        now = time.monotonic()
        principal = self._lookup(digest)
        with self._lock:
            if principal is None:
                self._cache.pop(digest, None)
            else:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + self._ttl, principal)
        return principal

    def _lookup(self, digest: str) -> Principal | None:
        with Session(self._engine) as session:
            row = session.execute(
                select(ApiToken).where(col(ApiToken.token_hash) == digest)
            ).scalar_one_or_none()
            if row is None or row.revoked_at is not None:
                return None
            # compare again in constant time: the index lookup is not
            if not hmac.compare_digest(row.token_hash, digest):
                return None
            principal = Principal(row.id, row.name, row.scope, row.node_id)
            self._touch(session, row.id)
            return principal

    def _touch(self, session: Session, token_id: uuid.UUID) -> None:
        now = time.monotonic()
        if now - self._touched.get(token_id, -1e9) < self._touch_every:
            return
        self._touched[token_id] = now
        session.execute(
            update(ApiToken)
            .where(col(ApiToken.id) == token_id)
            .values(last_used_at=datetime.now(UTC))
        )
        session.commit()

    def forget(self) -> None:
        """Drop the cache (after a revocation through this process)."""
        with self._lock:
            self._cache.clear()
