"""``edgecloud simulate``: realistic telemetry with injected anomalies, to the edge broker."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from edgecloud.cli._common import fail, settings_error
from edgecloud.core.errors import EdgecloudError


def simulate(
    devices: Annotated[int, typer.Option(min=1, max=100_000, help="number of devices")] = 10,
    rate: Annotated[float, typer.Option(min=0.001, help="readings per second per device")] = 1.0,
    duration: Annotated[float, typer.Option(min=0.0, help="seconds to publish")] = 60.0,
    anomaly_rate: Annotated[
        float, typer.Option(min=0.0, max=0.49, help="share of readings inside an injected fault")
    ] = 0.02,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 0,
    prefix: Annotated[str, typer.Option(help="device ids are PREFIX-001, PREFIX-002, ...")] = "sim",
    mqtt_url: Annotated[
        str | None, typer.Option(help="edge broker URL (env EDGECLOUD_MQTT_URL)")
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="MQTT username (env EDGECLOUD_MQTT_USERNAME)")
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="MQTT password (env EDGECLOUD_MQTT_PASSWORD)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Publish realistic telemetry (temperature, vibration_rms, pressure, current; daily load
    cycle, drift, noise, injected spikes / drifts / stuck sensors / bearing wear) on
    devices/{id}/telemetry at QoS 1, with seq strictly increasing per device."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from edgecloud.adapters.mqtt import MqttConfig, make_publisher
    from edgecloud.core.settings import MqttSettings
    from edgecloud.sim.publisher import SimulationConfig, SimulationStats, run_simulation

    try:
        ms = MqttSettings()
        if mqtt_url is not None:
            ms = MqttSettings(mqtt_url=mqtt_url)
        config = MqttConfig.from_url(
            ms.mqtt_url,
            username=username or ms.mqtt_username,
            password=password or ms.mqtt_password,
            ca_file=ms.mqtt_ca_file,
            cert_file=ms.mqtt_cert_file,
            key_file=ms.mqtt_key_file,
            **ms.client_options(),
        )
    except (ValidationError, EdgecloudError) as exc:
        settings_error(exc)
    cfg = SimulationConfig(
        devices=devices, rate_hz=rate, duration_s=duration, anomaly_rate=anomaly_rate,
        seed=seed, device_prefix=prefix,
    )  # fmt: skip
    pub = make_publisher(config)
    try:
        pub.start()
    except EdgecloudError as exc:
        fail(str(exc))
    try:
        with Progress(
            TextColumn("[bold]simulate"), BarColumn(), TextColumn("{task.fields[count]} readings"),
            TimeRemainingColumn(), disable=quiet, transient=False,
        ) as progress:  # fmt: skip
            task = progress.add_task("publish", total=duration or 1.0, count=0)

            def tick(s: SimulationStats) -> None:
                progress.update(task, completed=min(s.seconds, duration), count=s.published)

            stats = run_simulation(cfg, pub, on_tick=tick)
            progress.update(task, completed=duration or 1.0, count=stats.published)
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    except EdgecloudError as exc:
        fail(str(exc))
    finally:
        pub.stop()
    faults = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_fault.items())) or "none"
    typer.echo(
        f"published {stats.published} readings from {devices} devices in {stats.seconds:.1f} s "
        f"({stats.rate_per_s:.0f}/s), {stats.acked} acknowledged by the broker; "
        f"{stats.anomalous} inside injected faults ({faults})"
    )
