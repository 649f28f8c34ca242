"""Cloud services: REST API + dashboard, Kafka worker."""

from __future__ import annotations

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Cloud services: REST API + dashboard, Kafka worker.", no_args_is_help=True)


@app.command("api")
def api() -> None:
    """api (issue #5)."""
    not_yet("api", 5)


@app.command("worker")
def worker() -> None:
    """worker (issue #5)."""
    not_yet("worker", 5)
