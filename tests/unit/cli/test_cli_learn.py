"""``edgecloud label`` and ``edgecloud model retrain`` refuse bad input before any request (an
unreachable API URL shows that nothing was sent), and a refused call is a CLI error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from edgecloud.cli import app

NOWHERE = "http://127.0.0.1:9"  # discard port: any request would fail to connect
EID = "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["label", EID, "maybe"], "verdict must be one of"),
        (["label", "not-a-uuid", "missed"], "is not an event id"),
        (["model", "retrain", "m", "--since", "-1h", "--trainer", "forest"], "trainer must be"),
        (["model", "retrain", "m", "--since", "-1h", "--waves", "x"], "waves are integers"),
        (["model", "retrain", "m", "--since", "-1h", "--gate", "a=b"], "gates name=number"),
    ],
)
def test_bad_input_is_a_cli_error_before_any_request(argv: list[str], message: str) -> None:
    res = CliRunner().invoke(app, [*argv, "--api-url", NOWHERE, "--token", "t"])
    assert res.exit_code == 1
    assert message in res.output
    assert "cannot reach" not in res.output


def test_an_unreachable_api_is_a_cli_error() -> None:
    res = CliRunner().invoke(app, ["label", EID, "missed", "--api-url", NOWHERE, "--token", "t"])
    assert res.exit_code == 1 and "cannot reach the cloud API" in res.output
