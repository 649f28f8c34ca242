"""Local stack: Postgres, Mosquitto, Kafka, cloud services and edge nodes."""

from __future__ import annotations

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Local stack: Postgres, Mosquitto, Kafka, cloud services and edge nodes.", no_args_is_help=True)


@app.command("up")
def up() -> None:
    """up (issue #2)."""
    not_yet("up", 2)


@app.command("down")
def down() -> None:
    """down (issue #2)."""
    not_yet("down", 2)


@app.command("status")
def status() -> None:
    """status (issue #2)."""
    not_yet("status", 2)
