"""``edgecloud trace DEVICE SEQ``: one reading's timeline across every hop of the local stack."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from edgecloud.cli._common import fail
from edgecloud.core.readings import ID_PATTERN
from edgecloud.dev.control import StackConfig
from edgecloud.dev.stack import default_state_dir


def trace(
    device_id: Annotated[str, typer.Argument(help="the reading's device_id")],
    seq: Annotated[int, typer.Argument(help="the reading's seq", min=0)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the timeline as JSON.")] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            envvar="EDGECLOUD_STATE_DIR",
            help="State directory of the local stack "
            "[env EDGECLOUD_STATE_DIR; default ~/.cache/edgecloud/dev].",
        ),
    ] = None,
) -> None:
    """Print one reading's timeline: device ts, edge receive / commit / publish, bridge spool
    and Kafka ack, cloud store; from the stored timestamps and the local stack's logs (the log
    lines need EDGECLOUD_TRACE_SAMPLE, 1 in the dev stack)."""
    from edgecloud.dev.trace import timeline

    if not re.fullmatch(ID_PATTERN, device_id):
        fail(f"trace: {device_id!r} is not a device id (1-64 of [A-Za-z0-9._-])")
    config = StackConfig.load(state_dir or default_state_dir("dev"))
    found = timeline(config, device_id, seq)
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=2))
    if not found.steps:
        fail(f"trace: no reading {device_id}/{seq} in the local stack (trace id {found.trace_id})")
    if as_json:
        return
    console = Console()
    start = found.steps[0].at
    table = Table("time (UTC)", "+ms", "hop", "source", title=f"trace {found.trace_id}")
    for step in found.steps:
        ms = (step.at - start).total_seconds() * 1000
        table.add_row(step.at.strftime("%H:%M:%S.%f")[:-3], f"{ms:.0f}", step.hop, step.source)
    console.print(table)
