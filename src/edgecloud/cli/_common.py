"""Helpers shared by the CLI modules (user-facing output only lives in the CLI)."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from edgecloud.core.errors import ConfigError, EdgecloudError

# The logging options every long-running command takes (flags override the environment).
TraceSampleOption = Annotated[
    int | None,
    typer.Option(
        help="log one line per hop for 1 reading in N, 0 = off (env EDGECLOUD_TRACE_SAMPLE, "
        "default 0; edgecloud trace)",
    ),
]
LogLevelOption = Annotated[str | None, typer.Option(help="(env EDGECLOUD_LOG_LEVEL, default INFO)")]
LogFormatOption = Annotated[
    str | None, typer.Option(help="json or text (env EDGECLOUD_LOG_FORMAT, default json)")
]


def not_yet(what: str, issue: int) -> NoReturn:
    typer.echo(f"edgecloud: {what} is not available yet (tracked in issue #{issue}).", err=True)
    raise typer.Exit(code=2)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"edgecloud: error: {message}", err=True)
    raise typer.Exit(code=code)


def settings_error(exc: ValidationError | ConfigError | EdgecloudError) -> NoReturn:
    if isinstance(exc, ValidationError):
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        fail("invalid settings:\n" + "\n".join(lines))
    fail(str(exc))
