"""Helpers shared by the CLI modules (user-facing output only lives in the CLI)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NoReturn

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
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
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


def table_or_json(
    rows: Sequence[dict[str, Any]],
    as_json: bool,
    columns: Sequence[tuple[str, Callable[[dict[str, Any]], str]]],
) -> None:
    """A list answer of the API as JSON (``--json``) or as a table of ``columns`` (header, cell)."""
    if as_json:
        typer.echo(json.dumps(list(rows), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*(header for header, _ in columns))
    for row in rows:
        table.add_row(*(cell(row) for _, cell in columns))
    Console().print(table)
