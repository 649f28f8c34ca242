"""Edge fleet: nodes, labels, heartbeats, active models."""

from __future__ import annotations

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Edge fleet: nodes, labels, heartbeats, active models.", no_args_is_help=True)


@app.command("ls")
def ls() -> None:
    """ls (issue #5)."""
    not_yet("ls", 5)
