"""The API's Postgres pool follows EDGECLOUD_API_DB_POOL (bench fleet exhausted 10 + 10)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgecloud.cloud.api.app import api_engine
from edgecloud.cloud.settings import CloudSettings


def test_pool_size_and_overflow_follow_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_API_DB_POOL", "40")
    settings = CloudSettings()
    assert settings.api_db_pool == 40
    engine = api_engine("postgresql://u:p@127.0.0.1:1/db", settings.api_db_pool)
    try:
        assert engine.pool.size() == 40  # type: ignore[attr-defined]
        assert engine.pool._max_overflow == 40  # type: ignore[attr-defined]
    finally:
        engine.dispose()
    assert CloudSettings.model_fields["api_db_pool"].default == 10


def test_a_pool_of_zero_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_API_DB_POOL", "0")
    with pytest.raises(ValidationError, match="api_db_pool"):
        CloudSettings()
