"""``edgecloud token``: cloud API tokens (scopes read < operate < admin; node = one node's own
desired state). Works on the cloud database (EDGECLOUD_DATABASE_URL) through
``cloud/token_admin.py``, so the first admin token can be made before any token exists;
``POST /api/v1/tokens`` does the same over HTTP.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from edgecloud.cli._common import fail

app = typer.Typer(
    help="Cloud API tokens (scopes read, operate, admin, node).", no_args_is_help=True
)

DbOption = Annotated[
    str | None,
    typer.Option("--database-url", help="cloud database (env EDGECLOUD_DATABASE_URL)"),
]


def _database_url(database_url: str | None) -> str:
    from pydantic import ValidationError

    from edgecloud.cli._common import settings_error
    from edgecloud.cloud.settings import CloudSettings

    try:
        flags: dict[str, Any] = {"database_url": database_url} if database_url else {}
        settings = CloudSettings(**flags)
    except ValidationError as exc:
        settings_error(exc)
    return settings.database_url


@app.command("create")
def create(
    scope: Annotated[str, typer.Option(help="read, operate, admin or node")],
    name: Annotated[str, typer.Option(help="a label to recognise the token by")] = "",
    node_id: Annotated[
        str | None, typer.Option("--node-id", help="the node a node-scope token acts for")
    ] = None,
    database_url: DbOption = None,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="upgrade the schema first")
    ] = True,
) -> None:
    """Create a token and print it (once: only its sha256 is stored)."""
    from edgecloud.cloud import auth, token_admin
    from edgecloud.core.errors import ValidationFailed

    if scope not in auth.SCOPES:
        fail(f"--scope must be one of {', '.join(auth.SCOPES)}")
    try:
        token, row = token_admin.create(_database_url(database_url), scope, name, node_id, migrate)
    except ValidationFailed as exc:
        fail(exc.detail)
    typer.echo(
        f"created {row.scope} token {row.name!r} (id {row.id}); it is shown only now:", err=True
    )
    typer.echo(token)


@app.command("ls")
def ls(database_url: DbOption = None) -> None:
    """List tokens (never the tokens themselves: only their hashes are stored)."""
    from rich.console import Console
    from rich.table import Table

    from edgecloud.cloud import token_admin

    rows = token_admin.listing(_database_url(database_url))
    table = Table("name", "scope", "node", "created", "last used", "revoked")
    table.add_column("id", overflow="fold", min_width=36)
    for r in rows:
        table.add_row(
            str(r.id),
            r.name,
            r.scope,
            r.node_id or "",
            f"{r.created_at:%Y-%m-%d %H:%M}",
            f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "",
            f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "",
            str(r.id),
        )
    Console().print(table)


@app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="the id shown by `token ls`")],
    database_url: DbOption = None,
) -> None:
    """Revoke a token (API processes stop accepting it within 5 seconds)."""
    from edgecloud.cloud import token_admin

    try:
        tid = uuid.UUID(token_id)
    except ValueError:
        fail(f"{token_id!r} is not a token id")
    done = token_admin.revoke(_database_url(database_url), tid)
    if not done:
        fail(f"no active token {tid}")
    typer.echo(f"revoked {tid}")
