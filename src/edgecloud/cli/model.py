"""Model registry: sign and upload bundles, list models."""

from __future__ import annotations

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Model registry: sign and upload bundles, list models.", no_args_is_help=True)


@app.command("push")
def push() -> None:
    """push (issue #6)."""
    not_yet("push", 6)


@app.command("ls")
def ls() -> None:
    """ls (issue #6)."""
    not_yet("ls", 6)
