"""``edgecloud dev``: the local stack (Postgres, Mosquitto, Kafka, cloud services, edge nodes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from edgecloud.cli._common import fail
from edgecloud.core.errors import EdgecloudError
from edgecloud.dev.control import AppReport, StackConfig, down, exited_apps, status, up
from edgecloud.dev.stack import External, default_state_dir

app = typer.Typer(
    help="Local stack: Postgres, Mosquitto, Kafka, cloud services and edge nodes.\n\n"
    "State lives in EDGECLOUD_STATE_DIR (default ~/.cache/edgecloud/dev). Bring your own "
    "services with EDGECLOUD_DEV_POSTGRES_URL (admin URL), EDGECLOUD_DEV_MQTT_URL "
    "(mqtt://user:password@host:port) and EDGECLOUD_DEV_KAFKA_BOOTSTRAP: those are used, "
    "not started.",
    no_args_is_help=True,
)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="EDGECLOUD_STATE_DIR",
        help="State directory [env EDGECLOUD_STATE_DIR; default ~/.cache/edgecloud/dev].",
    ),
]


def _state(state_dir: Path | None) -> Path:
    return state_dir if state_dir is not None else default_state_dir("dev")


@app.command("up")
def up_cmd(
    demo: Annotated[
        bool, typer.Option("--demo", help="Also run the demo and print a summary.")
    ] = False,
    nodes: Annotated[
        int, typer.Option("--nodes", min=1, max=20, help="Edge nodes (site=site-1..N).")
    ] = 1,
    state_dir: StateDir = None,
) -> None:
    """Start the whole local stack; idempotent (starts only what is not running)."""
    console = Console(stderr=True)
    config = StackConfig(
        _state(state_dir), nodes=nodes, external=External.from_env("EDGECLOUD_DEV_")
    )
    try:
        with console.status("edgecloud dev up") as spinner:
            reports = up(config, lambda text: spinner.update(f"{text} ..."))
    except EdgecloudError as exc:
        fail(f"dev up: {exc}")
    _print_reports(console, reports)
    if demo:
        from edgecloud.dev.demo import run_demo

        run_demo(config, typer.echo)
    else:
        typer.echo(f"stack up; `edgecloud dev status` shows it (state: {config.state_dir})")


def _print_reports(console: Console, reports: list[AppReport]) -> None:
    for report in reports:
        if report.pid is not None:
            note = ""
            if report.healthy is not None:
                note = ", healthy" if report.healthy else ", [red]not answering its health URL[/]"
            console.print(f"[green]started[/] {report.name} (pid {report.pid}{note})")
        else:
            console.print(f"[yellow]exited[/] {report.name} with code {report.exit_code}:")
            for line in report.tail.splitlines()[-3:]:
                console.print(f"    {line}", markup=False)


@app.command("down")
def down_cmd(state_dir: StateDir = None) -> None:
    """Stop the stack: apps, then Kafka, Mosquitto, Postgres. No process or port remains."""
    config = StackConfig.load(_state(state_dir))
    try:
        down(config)
    except EdgecloudError as exc:
        fail(f"dev down: {exc}")
    typer.echo(f"stack down (state kept in {config.state_dir})")


@app.command("status")
def status_cmd(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the machine-readable object (CONTRACT 4).")
    ] = False,
    state_dir: StateDir = None,
) -> None:
    """Show what runs where (URLs, credentials, nodes, processes)."""
    config = StackConfig.load(_state(state_dir))
    info = status(config)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    console = Console()
    table = Table("process", "pid", "note")
    exited = exited_apps(config)
    for name, pid in info["processes"].items():
        note = ""
        if name in exited:
            detail = exited[name]
            last = str(detail.get("tail", "")).strip().splitlines()
            note = f"exit {detail.get('code')}: {last[-1] if last else ''}"
        table.add_row(name, str(pid) if pid else "-", note)
    console.print(table)
    for key in ("mqtt_url", "kafka_bootstrap", "cloud_api_url", "cloud_database_url"):
        console.print(f"{key}: {info[key]}", markup=False)
