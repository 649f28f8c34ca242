"""Edge settings of issue 20: the HTTP token off loopback, the ts window."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgecloud.edge.settings import EdgeSettings, is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
     ("agent.local", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_off_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGECLOUD_HTTP_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="EDGECLOUD_HTTP_TOKEN"):
        EdgeSettings(http_host="0.0.0.0")
    with pytest.raises(ValidationError, match="at least 16"):
        EdgeSettings(http_host="0.0.0.0", http_token="short")
    s = EdgeSettings(http_host="0.0.0.0", http_token="x" * 32)
    assert s.http_token is not None and s.http_token.get_secret_value() == "x" * 32
    assert "x" * 32 not in repr(s)  # a secret, never printed
    assert EdgeSettings(http_host="0.0.0.0", http_port=0).http_token is None  # server off
    assert EdgeSettings().http_token is None  # loopback: optional (local Prometheus, Dapr)


def test_ts_window_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_TS_MAX_PAST_S", "60")
    monkeypatch.setenv("EDGECLOUD_TS_MAX_FUTURE_S", "5")
    assert EdgeSettings().ts_window == (60.0, 5.0)
    monkeypatch.setenv("EDGECLOUD_TS_MAX_FUTURE_S", "0")
    with pytest.raises(ValidationError):
        EdgeSettings()
