"""Staged model rollouts to edge fleets."""

from __future__ import annotations

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Staged model rollouts to edge fleets.", no_args_is_help=True)


@app.command("start")
def start() -> None:
    """start (issue #6)."""
    not_yet("start", 6)


@app.command("status")
def status() -> None:
    """status (issue #6)."""
    not_yet("status", 6)


@app.command("pause")
def pause() -> None:
    """pause (issue #6)."""
    not_yet("pause", 6)


@app.command("resume")
def resume() -> None:
    """resume (issue #6)."""
    not_yet("resume", 6)


@app.command("abort")
def abort() -> None:
    """abort (issue #6)."""
    not_yet("abort", 6)
