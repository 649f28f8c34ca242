"""Sync bridge: edge MQTT events to cloud Kafka, store and forward."""

from __future__ import annotations

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Sync bridge: edge MQTT events to cloud Kafka, store and forward.", no_args_is_help=True)


@app.command("run")
def run() -> None:
    """run (issue #4)."""
    not_yet("run", 4)
