"""``edgecloud fleet``: the edge nodes as the cloud API sees them.

Talks to the cloud API (``--api-url`` / EDGECLOUD_CLOUD_API_URL) with a read token
(``--token`` / EDGECLOUD_API_TOKEN; without one, the ``read`` token of the local dev stack,
``$EDGECLOUD_STATE_DIR/tokens.json``, is used when there is one).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecloud.cli._common import fail

app = typer.Typer(
    help="Edge fleet: nodes, labels, heartbeats, active models.", no_args_is_help=True
)

DEFAULT_API_URL = "http://127.0.0.1:8400"


def dev_read_token() -> str | None:
    state = Path(os.environ.get("EDGECLOUD_STATE_DIR", "~/.cache/edgecloud/dev")).expanduser()
    try:
        tokens = json.loads((state / "tokens.json").read_text())
    except (OSError, ValueError):
        return None
    token = tokens.get("read") if isinstance(tokens, dict) else None
    return str(token) if token else None


def fetch_nodes(api_url: str, token: str, selector: str | None) -> list[dict[str, Any]]:
    import httpx

    nodes: list[dict[str, Any]] = []
    params: dict[str, str] = {"selector": selector} if selector else {}
    with httpx.Client(base_url=api_url, timeout=10.0) as client:
        while True:
            try:
                res = client.get(
                    "/api/v1/nodes", params=params, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.HTTPError as exc:
                fail(f"cannot reach the cloud API at {api_url}: {exc}")
            if res.status_code != 200:
                try:
                    detail = res.json().get("detail", res.text)
                except ValueError:
                    detail = res.text
                fail(f"cloud API answered {res.status_code}: {detail}")
            page = res.json()
            nodes.extend(page["items"])
            if not page.get("next_cursor"):
                return nodes
            params["cursor"] = page["next_cursor"]


def _ago(iso: str) -> str:
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


@app.command("ls")
def ls(
    api_url: Annotated[
        str, typer.Option(envvar="EDGECLOUD_CLOUD_API_URL", help="cloud API base URL")
    ] = DEFAULT_API_URL,
    token: Annotated[
        str | None,
        typer.Option(envvar="EDGECLOUD_API_TOKEN", help="read token (default: the dev stack's)"),
    ] = None,
    selector: Annotated[
        str | None, typer.Option(help="only nodes with these labels, e.g. site=site-1")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List edge nodes: labels, last heartbeat, active model versions, counters."""
    token = token or dev_read_token()
    if not token:
        fail("no API token: pass --token or set EDGECLOUD_API_TOKEN (a read-scope token)")
    nodes = fetch_nodes(api_url.rstrip("/"), token, selector)
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
