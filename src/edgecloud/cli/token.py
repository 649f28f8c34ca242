"""Cloud API tokens (scopes read, operate, admin, node)."""

from __future__ import annotations

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Cloud API tokens (scopes read, operate, admin, node).", no_args_is_help=True)


@app.command("create")
def create() -> None:
    """create (issue #5)."""
    not_yet("create", 5)
