"""Benchmarks against the raw library limit (CONTRACT section 8)."""

from __future__ import annotations

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Benchmarks against the raw library limit (CONTRACT section 8).", no_args_is_help=True)


@app.command("edge")
def edge() -> None:
    """edge (issue #2)."""
    not_yet("edge", 2)


@app.command("bridge")
def bridge() -> None:
    """bridge (issue #2)."""
    not_yet("bridge", 2)


@app.command("cloud")
def cloud() -> None:
    """cloud (issue #2)."""
    not_yet("cloud", 2)


@app.command("e2e")
def e2e() -> None:
    """e2e (issue #2)."""
    not_yet("e2e", 2)
