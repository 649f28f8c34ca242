"""``edgecloud dev``: the local stack (Postgres, Mosquitto, Kafka, cloud services, edge nodes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from edgecloud.cli._common import fail
from edgecloud.core.errors import EdgecloudError
from edgecloud.dev.base import DEV_PORTS, Ports
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
        int | None,
        typer.Option(
            "--nodes", min=1, max=20, help="Edge nodes (site=site-1..N) [default 1; 3 with --demo]."
        ),
    ] = None,
    duration: Annotated[
        float,
        typer.Option(
            "--duration",
            min=5.0,
            envvar="EDGECLOUD_DEMO_DURATION",
            help="--demo: seconds of device simulation, at least [env EDGECLOUD_DEMO_DURATION].",
        ),
    ] = 45.0,
    devices_per_node: Annotated[
        int, typer.Option("--devices-per-node", min=1, max=1000, help="--demo: devices per node.")
    ] = 6,
    rate: Annotated[
        float, typer.Option("--rate", min=0.01, help="--demo: readings/s per device.")
    ] = 5.0,
    json_file: Annotated[
        Path | None,
        typer.Option(
            "--json", help="--demo: also write the summary as JSON to this file ('-': stdout)."
        ),
    ] = None,
    no_dapr: Annotated[
        bool,
        typer.Option(
            "--no-dapr",
            help="Run without the daprd sidecars (a machine that cannot build daprd); "
            "EDGECLOUD_DEV_DAPR_PORT_BASE moves their ports (default 8600, 4 per sidecar).",
        ),
    ] = False,
    state_dir: StateDir = None,
) -> None:
    """Start the whole local stack; idempotent (starts only what is not running).

    Ports: EDGECLOUD_DEV_PORTS=pg,mqtt,kafka,controller moves the services, and
    EDGECLOUD_DEV_API_PORT / EDGECLOUD_DEV_AGENT_PORT_BASE / EDGECLOUD_DEV_BRIDGE_PORT_BASE the
    apps (defaults 15432,11883,19092,19093 and 8400 / 8410 / 8460)."""
    console = Console(stderr=True)
    if nodes is None:
        nodes = 3 if demo else 1
    config = StackConfig(
        _state(state_dir),
        nodes=nodes,
        ports=_ports(),
        external=External.from_env("EDGECLOUD_DEV_"),
        dapr=not no_dapr,
    )
    try:
        with console.status("edgecloud dev up") as spinner:
            reports = up(config, lambda text: spinner.update(f"{text} ..."))
    except EdgecloudError as exc:
        fail(f"dev up: {exc}")
    _print_reports(console, reports)
    if demo:
        from edgecloud.dev.demo import DemoOptions, run_demo

        options = DemoOptions(duration_s=duration, devices_per_node=devices_per_node, rate_hz=rate)
        echo = (lambda text: typer.echo(text, err=True)) if str(json_file) == "-" else typer.echo
        try:
            code, summary = run_demo(config, echo, options)
        except (EdgecloudError, RuntimeError, OSError) as exc:
            fail(f"demo: {exc}")
        if json_file is not None:
            text = json.dumps(summary, indent=2)
            if str(json_file) == "-":
                typer.echo(text)
            else:
                json_file.write_text(text + "\n")
        raise typer.Exit(code)
    else:
        typer.echo(f"stack up; `edgecloud dev status` shows it (state: {config.state_dir})")


def _ports() -> Ports:
    """``EDGECLOUD_DEV_PORTS=pg,mqtt,kafka,controller`` or the dev defaults."""
    env = os.environ.get("EDGECLOUD_DEV_PORTS")
    if not env:
        return DEV_PORTS
    try:
        pg, mqtt, kafka, ctl = (int(p) for p in env.split(","))
    except ValueError:
        fail("EDGECLOUD_DEV_PORTS must be four ports: pg,mqtt,kafka,controller")
    return Ports(postgres=pg, mqtt=mqtt, kafka=kafka, kafka_controller=ctl)


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
    for key in (
        "mqtt_url",
        "kafka_bootstrap",
        "cloud_api_url",
        "cloud_database_url",
        "prometheus_url",
    ):
        console.print(f"{key}: {info[key]}", markup=False)
