"""Edge agent: MQTT ingest, local inference, local database, events out."""

from __future__ import annotations

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Edge agent: MQTT ingest, local inference, local database, events out.", no_args_is_help=True)


@app.command("run")
def run() -> None:
    """run (issue #3)."""
    not_yet("run", 3)
