"""Operator ed25519 signing keys."""

from __future__ import annotations

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Operator ed25519 signing keys.", no_args_is_help=True)


@app.command("gen")
def gen() -> None:
    """gen (issue #3)."""
    not_yet("gen", 3)
