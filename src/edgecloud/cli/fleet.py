"""``edgecloud fleet``: the edge nodes as the cloud API sees them.

Talks to the cloud API (``--api-url`` / EDGECLOUD_CLOUD_API_URL) with a read token
(``--token`` / EDGECLOUD_API_TOKEN; without one, the ``read`` token of the local dev stack,
``$EDGECLOUD_STATE_DIR/tokens.json``, is used when there is one).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from edgecloud.cli._common import AsJson, fail
from edgecloud.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
    ApiRefused,
    ApiUnreachable,
    ApiUrl,
    Token,
    resolve_token,
)

app = typer.Typer(
    help="Edge fleet: nodes, labels, heartbeats, active models.", no_args_is_help=True
)


def fetch_nodes(api_url: str, token: str, selector: str | None) -> list[dict[str, Any]]:
    params: dict[str, str] = {"selector": selector} if selector else {}
    with ApiClient(api_url, token, timeout=10.0) as client:
        try:
            return list(client.pages("/api/v1/nodes", params))
        except (ApiUnreachable, ApiRefused) as exc:
            fail(str(exc))


def _ago(iso: str) -> str:
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


@app.command("ls")
def ls(
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    selector: Annotated[
        str | None, typer.Option(help="only nodes with these labels, e.g. site=site-1")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List edge nodes: labels, last heartbeat, active model versions, counters."""
    nodes = fetch_nodes(api_url, resolve_token(token, "read"), selector)
    if as_json:
        typer.echo(json.dumps(nodes, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("node", "status", "labels", "last heartbeat", "active models", "spool")
    for n in nodes:
        models = ", ".join(
            f"{m.get('name') or m.get('model', '?')}@{m.get('version', '?')}"
            for m in n["active_models"]
        )
        labels = ",".join(f"{k}={v}" for k, v in sorted(n["labels"].items()))
        spool = "" if n.get("spool_depth") is None else str(n["spool_depth"])
        table.add_row(
            n["node_id"], n["status"], labels, _ago(n["last_heartbeat"]), models or "-", spool
        )
    Console().print(table)
    if not nodes:
        typer.echo("no nodes have sent a heartbeat yet", err=True)
