"""``edgecloud rollout``: start a staged rollout, follow it, pause / resume / abort it.

Talks to the cloud API like ``edgecloud model`` (``--api-url``, ``--token``: an ``operate``
token; the dev stack's by default).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from edgecloud.cli._common import fail
from edgecloud.cli.client import DEFAULT_API_URL, ApiUrl, Token, api_call, resolve_token

app = typer.Typer(help="Staged model rollouts to edge fleets.", no_args_is_help=True)
FINAL = ("succeeded", "failed", "aborted")


def _selector(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not key:
                fail(f"selector {part!r} is not key=value")
            out[key.strip()] = value.strip()
    return out


@app.command("start")
def start(
    model: Annotated[str, typer.Argument(help="NAME:VERSION of a registered model")],
    selector: Annotated[
        list[str] | None, typer.Option("--selector", "-l", help="node labels k=v (repeatable)")
    ] = None,
    waves: Annotated[str, typer.Option(help="cumulative percentages of the nodes")] = "10,50,100",
    gate: Annotated[
        list[str] | None,
        typer.Option(help="gate threshold name=value, e.g. min_agreement=0.95 (repeatable)"),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rollout as JSON")] = False,
) -> None:
    """Start a rollout; prints its id (last line of stdout)."""
    try:
        wave_list = [int(w) for w in waves.split(",") if w.strip()]
        gates = {k: float(v) for k, _, v in (g.partition("=") for g in gate or [])}
    except ValueError:
        fail("waves are integers (10,50,100) and gates name=number")
    body = {"model": model, "selector": _selector(selector or []), "waves": wave_list,
            "gates": gates}  # fmt: skip
    out = api_call("POST", api_url, resolve_token(token, "operate"), "/api/v1/rollouts", json=body)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
    else:
        n = len(out["nodes"])
        typer.echo(f"rollout of {model} to {n} node(s) in waves {waves} started", err=True)
    typer.echo(out["id"])


def _table(ro: dict[str, Any]) -> Any:
    """The rollout as a table of short columns (none wraps), then each node's detail and the
    rollout's on lines of their own: a detail column squeezed by a narrow terminal (``--watch``
    in a split pane) came out one word per line."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    title = f"{ro['id']}  {ro['model']}:{ro['version']}  {ro['state']}"
    if ro["state"] in ("running", "paused"):
        title += f"  wave {ro['current_wave'] + 1}/{len(ro['waves'])}"
    table = Table(title=title)
    for name in ("wave", "node", "status", "agreement", "drift", "p99 ms", "swap ms"):
        table.add_column(name, no_wrap=True, min_width=min(len(name), 6))
    details: list[Text] = []
    for n in ro["nodes"]:
        m = n["metrics"]

        def f(key: str, fmt: str = "{:.3f}", m: dict[str, float] = m) -> str:
            return fmt.format(m[key]) if key in m else "-"

        table.add_row(
            f"{n['wave'] + 1} ({ro['waves'][n['wave']]}%)", n["node_id"], n["status"],
            f("agreement"), f("score_drift"), f("latency_p99_ms", "{:.1f}"),
            f("swap_ms", "{:.1f}"),
        )  # fmt: skip
        if n["detail"]:
            details.append(Text(f"{n['node_id']}: {n['detail'][:500]}"))
    if ro.get("detail"):
        details.append(Text(f"rollout: {ro['detail']}"))
    return Group(table, *details)


@app.command("status")
def status(
    rollout_id: Annotated[str, typer.Argument(help="rollout id (r-...)")],
    watch: Annotated[bool, typer.Option("--watch", "-w", help="follow live until it ends")] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 1.0,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a rollout's waves and nodes; ``--watch`` redraws until it ends."""
    from rich.console import Console
    from rich.live import Live

    token = resolve_token(token, "read")
    path = f"/api/v1/rollouts/{rollout_id}"
    ro = api_call("GET", api_url, token, path)
    if as_json:
        typer.echo(json.dumps(ro, indent=2))
        return
    if not watch:
        Console().print(_table(ro))
        return
    with Live(_table(ro), refresh_per_second=4) as live:
        while ro["state"] not in FINAL:
            time.sleep(interval)
            ro = api_call("GET", api_url, token, path)
            live.update(_table(ro))
    if ro["state"] != "succeeded":
        raise typer.Exit(code=1)


def _steer(action: str, rollout_id: str, api_url: str, token: str | None) -> None:
    out = api_call(
        "POST", api_url, resolve_token(token, "operate"), f"/api/v1/rollouts/{rollout_id}/{action}"
    )
    typer.echo(f"{out['id']}: {out['state']}")


@app.command("pause")
def pause(rollout_id: str, api_url: ApiUrl = DEFAULT_API_URL, token: Token = None) -> None:
    """Stop advancing waves (nodes keep what they run)."""
    _steer("pause", rollout_id, api_url, token)


@app.command("resume")
def resume(rollout_id: str, api_url: ApiUrl = DEFAULT_API_URL, token: Token = None) -> None:
    """Carry on a paused rollout."""
    _steer("resume", rollout_id, api_url, token)


@app.command("abort")
def abort(rollout_id: str, api_url: ApiUrl = DEFAULT_API_URL, token: Token = None) -> None:
    """Stop the rollout and roll every node it touched back to its previous model."""
    _steer("abort", rollout_id, api_url, token)
