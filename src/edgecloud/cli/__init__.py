"""The ``edgecloud`` command line: one sub-app per role, composed here.

Each command builds its settings (flags over environment over defaults), configures logging
and calls the role's ``run()``; nothing else lives in the CLI.
"""

from __future__ import annotations

import typer

from edgecloud.cli import (
    bench,
    bridge,
    ca,
    cloud,
    dev,
    device,
    edge,
    fleet,
    k3s,
    keys,
    learn,
    model,
    rollout,
    simulate,
    token,
    trace,
)

app = typer.Typer(
    name="edgecloud",
    help=(
        "Hybrid edge-to-cloud AI: devices -> edge inference -> Kafka -> cloud,"
        " signed model rollouts."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(dev.app, name="dev")
app.add_typer(edge.app, name="edge")
app.add_typer(bridge.app, name="bridge")
app.add_typer(cloud.app, name="cloud")
app.add_typer(model.app, name="model")
app.add_typer(rollout.app, name="rollout")
app.add_typer(fleet.app, name="fleet")
app.add_typer(keys.app, name="keys")
app.add_typer(token.app, name="token")
app.add_typer(bench.app, name="bench")
app.add_typer(device.app, name="device")
app.add_typer(ca.app, name="ca")
app.add_typer(k3s.app, name="k3s")
app.command("simulate")(simulate.simulate)
app.command("label")(learn.label)
model.app.command("retrain")(learn.retrain)
app.command("trace")(trace.trace)


def main() -> None:
    app()
