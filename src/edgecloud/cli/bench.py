"""Benchmarks against the raw library limit (CONTRACT section 8)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Benchmarks against the raw library limit (CONTRACT section 8).", no_args_is_help=True
)


PEER_HELP = (
    "also run this peer side by side in the same run: 'telegraf' (built by "
    "scripts/build-telegraf.sh into ~/.cache/edgecloud/telegraf/)"
)


def check_peer(peer: str | None) -> None:
    """A clear CLI error for an unknown peer or one that is not built."""
    if peer is None:
        return
    if peer != "telegraf":
        raise typer.BadParameter(f"unknown peer {peer!r} (known: telegraf)", param_hint="--peer")
    from edgecloud.bench.peer import PeerMissing, binary

    try:
        binary()
    except PeerMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command("edge")
def edge(
    readings: Annotated[
        int | None,
        typer.Option(
            help="readings per throughput run (one per MQTT message; default 60,000, "
            "2,000 with --model image)"
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            help="offered readings/s of the throughput runs (default: as fast as the publishers go)"
        ),
    ] = None,
    runs: Annotated[int, typer.Option(help="throughput runs; the JSON reports the median")] = 3,
    publishers: Annotated[int, typer.Option(help="publisher processes")] = 2,
    latency_rate: Annotated[
        float | None,
        typer.Option(
            help="readings/s of the fixed-rate latency run (0: none; default 5,000, "
            "100 with --model image)"
        ),
    ] = None,
    latency_seconds: Annotated[float, typer.Option(help="length of the latency run")] = 10.0,
    model: Annotated[
        Path | None,
        typer.Option(
            help="model bundle (default models/bundles/sensor-anomaly/1.0.0), or "
            "'image': a generated image model fed 160x120 RGB camera frames"
        ),
    ] = None,
    keys: Annotated[
        str | None, typer.Option(help="trusted public keys of the bundle (default models/dev-keys)")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Postgres admin URL (may CREATE DATABASE); default: the dev stack's"),
    ] = None,
    mqtt_url: Annotated[
        str | None,
        typer.Option(help="mqtt://user:pass@host:port; default: a Mosquitto of its own"),
    ] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="write the result here")] = None,
) -> None:
    """Edge agent: MQTT -> validate -> ONNX -> local Postgres -> events out (CONTRACT 8).

    Writes name, messages, seconds, rate_per_s, p50_ms, p99_ms, lost, duplicates,
    limit_rate_per_s, ratio_to_limit; extra: agent RSS, the latency run, per-run limits.
    """
    import signal
    import sys

    from edgecloud.bench import edge as bench_edge
    from edgecloud.core.logging import configure_logging

    configure_logging("INFO", "text")
    # SIGTERM unwinds like Ctrl-C: the agent, the publishers and the broker it started stop too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    image = model is not None and str(model) == bench_edge.IMAGE
    target = bench_edge.make_target(database_url, mqtt_url)
    try:
        result = bench_edge.run(
            target,
            readings=readings if readings is not None else (2_000 if image else 60_000),
            rate=rate,
            runs=runs,
            publishers=publishers,
            latency_rate=latency_rate if latency_rate is not None else (100.0 if image else 5000.0),
            latency_seconds=latency_seconds,
            model=model or bench_edge.DEFAULT_MODEL,
            keys=keys if keys is not None else bench_edge.default_keys(),
        )
    finally:
        if target.close is not None:
            target.close()
    result.write(json_file)
    typer.echo(result.model_dump_json(indent=2))


@app.command("bridge")
def bridge(
    events: Annotated[int, typer.Option(help="events per throughput run")] = 100_000,
    rate: Annotated[float, typer.Option(help="events/s of the fixed-rate latency run")] = 5000.0,
    runs: Annotated[int, typer.Option(help="throughput runs; the JSON reports the median")] = 3,
    latency_seconds: Annotated[float, typer.Option(help="length of the latency run")] = 10.0,
    outage_seconds: Annotated[
        float, typer.Option(help="Kafka stopped this long in the drain phase (0: no drain phase)")
    ] = 60.0,
    drain_rate: Annotated[
        float, typer.Option(help="events/s offered during the drain phase")
    ] = 5000.0,
    publishers: Annotated[int, typer.Option(help="publisher processes")] = 2,
    shape: Annotated[
        str,
        typer.Option(
            help="arrays: JSON arrays of 200 events a message, as the edge outbox publishes; "
            "single: one event a message"
        ),
    ] = "arrays",
    peer: Annotated[str | None, typer.Option(help=PEER_HELP)] = None,
    kill_seconds: Annotated[
        float, typer.Option(help="with --peer: seconds of the kill -9 phase of each contender")
    ] = 20.0,
    json_file: Annotated[Path | None, typer.Option("--json", help="write the result here")] = None,
) -> None:
    """Sync bridge: MQTT QoS 1 in -> spool -> Kafka (idempotent, acks=all) out (CONTRACT 8).

    Starts a private Mosquitto and Kafka (free ports, temporary state). The limit is a paho
    receive-only loop in the same run; extra.drain holds the drain rate after the outage.
    """
    from edgecloud.bench import bridge as bench_bridge
    from edgecloud.core.logging import configure_logging

    if shape not in bench_bridge.SHAPES:
        raise typer.BadParameter(f"{shape!r}: arrays or single", param_hint="--shape")
    configure_logging("WARNING", "text")
    check_peer(peer)
    result = bench_bridge.run(
        events,
        rate,
        runs,
        latency_s=latency_seconds,
        outage_s=outage_seconds,
        drain_rate=drain_rate,
        publishers=publishers,
        shape=shape,
        say=lambda line: typer.echo(line, err=True),
        peer=peer,
        kill_seconds=kill_seconds,
    )
    result.write(json_file)
    typer.echo(result.model_dump_json(indent=2))


@app.command("mqtt")
def mqtt(
    messages: Annotated[int, typer.Option(help="QoS 1 messages per run")] = 100_000,
    runs: Annotated[int, typer.Option(help="runs; the JSON reports the median")] = 3,
    payload_bytes: Annotated[int, typer.Option(help="bytes per message")] = 200,
    json_file: Annotated[Path | None, typer.Option("--json", help="write the result here")] = None,
) -> None:
    """MQTT receive + ack: edgecloud's native client against paho, same run, same broker.

    Starts a private Mosquitto (free port, temporary state); extra has the CPU per message.
    """
    from edgecloud.bench import mqtt as bench_mqtt
    from edgecloud.core.logging import configure_logging

    configure_logging("WARNING", "text")
    result = bench_mqtt.run(
        messages, runs, payload_bytes, say=lambda line: typer.echo(line, err=True)
    )
    result.write(json_file)
    typer.echo(result.model_dump_json(indent=2))


@app.command("dapr")
def dapr(
    messages: Annotated[int, typer.Option(help="events per path")] = 5_000,
    json_file: Annotated[Path | None, typer.Option("--json", help="write the result here")] = None,
) -> None:
    """Events through a daprd sidecar (pubsub.mqtt3) against the native MQTT publisher.

    One run: a private Mosquitto and daprd (free ports, temporary state); rate and p99 per
    publish call for both paths; why the telemetry paths stay native (docs/dapr.md).
    """
    from edgecloud.bench import dapr as bench_dapr
    from edgecloud.core.logging import configure_logging

    configure_logging("WARNING", "text")
    result = bench_dapr.run(messages, say=lambda line: typer.echo(line, err=True))
    result.write(json_file)
    typer.echo(result.model_dump_json(indent=2))


@app.command("cloud")
def cloud(
    events: Annotated[int, typer.Option(help="reading events per run")] = 200_000,
    runs: Annotated[int, typer.Option(help="runs; the JSON reports the median")] = 3,
    batch_size: Annotated[int, typer.Option(help="worker batch (messages per transaction)")] = 2000,
    json_file: Annotated[Path | None, typer.Option("--json", help="write the result here")] = None,
    pg_admin_url: Annotated[
        str | None,
        typer.Option(help="Postgres URL allowed to CREATE DATABASE (default: the dev stack's)"),
    ] = None,
    kafka_bootstrap: Annotated[
        str | None, typer.Option(help="Kafka bootstrap (default: the dev stack's)")
    ] = None,
    rest: Annotated[
        bool,
        typer.Option(
            "--rest/--no-rest",
            help="also run the REST benchmark (aggregates p99 at 500 req/s over 1,000,000 "
            "readings) and add it under extra.rest",
        ),
    ] = False,
) -> None:
    """Kafka -> cloud worker -> Postgres ingest with aggregation, against raw psycopg COPY.

    Without --pg-admin-url / --kafka-bootstrap the dev stack's Postgres and Kafka are used
    (started if needed).
    """
    import json

    from edgecloud.bench import cloud as bench_cloud
    from edgecloud.core.logging import configure_logging
    from edgecloud.core.settings import KafkaSettings

    configure_logging("INFO", "text")
    # --kafka-bootstrap: that cluster with the EDGECLOUD_KAFKA_* settings (SASL user and all);
    # else the dev stack's Kafka as its principal bench
    kafka = None
    if kafka_bootstrap:
        kafka = KafkaSettings(kafka_bootstrap=kafka_bootstrap).kafka_connection()
    if pg_admin_url is None or kafka is None:
        from edgecloud.dev.stack import DEV_PORTS, default_state_dir, ensure_infra

        infra = ensure_infra(default_state_dir("dev"), DEV_PORTS)
        pg_admin_url = pg_admin_url or infra.pg_admin_url
        kafka = kafka or infra.kafka_client("bench")
    result = bench_cloud.run(pg_admin_url, kafka, events=events, runs=runs, batch_size=batch_size)
    if rest:
        from edgecloud.bench import rest as bench_rest

        result.extra["rest"] = bench_rest.run(pg_admin_url).model_dump()
    result.write(json_file)
    typer.echo(json.dumps(result.model_dump(exclude={"extra"}), indent=2))


@app.command("e2e")
def e2e(
    devices: Annotated[int, typer.Option(min=1, help="simulated devices")] = 20,
    rate: Annotated[float, typer.Option(min=1.0, help="offered readings/s (all devices)")] = 500.0,
    duration: Annotated[float, typer.Option(min=1.0, help="seconds of publishing per run")] = 20.0,
    runs: Annotated[int, typer.Option(min=1, help="runs; the JSON reports the median")] = 3,
    limit_events: Annotated[
        int, typer.Option(help="messages of the paho receive-loop limit measurement")
    ] = 20_000,
    state_dir: Annotated[
        Path | None, typer.Option(help="state dir of the private stack (default: a temp dir)")
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="leave the private stack running")] = False,
    json_file: Annotated[Path | None, typer.Option("--json", help="write the result here")] = None,
) -> None:
    """Whole path device -> agent -> bridge -> Kafka -> worker -> cloud Postgres (CONTRACT 8).

    Starts a private stack (free ports, one edge node, sensor-anomaly 1.0.0 rolled out), then
    per run publishes RATE readings/s for DURATION s and reads the cloud database: rate
    sustained (first publish to last commit), lost (published - unique rows), duplicates,
    p50/p99 of cloud received_at - reading ts. limit_rate_per_s: the paho receive loop on the
    same broker, the slowest raw hop (see docs/demo.md).
    """
    import json

    from edgecloud.bench import e2e as bench_e2e

    result = bench_e2e.run(
        devices=devices, rate=rate, duration=duration, runs=runs, limit_events=limit_events,
        state_dir=state_dir, keep=keep, log=lambda text: typer.echo(text, err=True),
    )  # fmt: skip
    result.write(json_file)
    typer.echo(json.dumps(result.model_dump(exclude={"extra"}), indent=2))


@app.command("rollout")
def rollout(
    nodes: Annotated[int, typer.Option(min=1, help="simulated nodes (plus one real agent)")] = 50,
    waves: Annotated[str, typer.Option(help="cumulative wave percentages")] = "10,50,100",
    test_stack: Annotated[
        bool, typer.Option("--test-stack", help="use the test stack instead of the dev stack")
    ] = False,
    json_file: Annotated[Path | None, typer.Option("--json", help="write the result here")] = None,
) -> None:
    """One model to N simulated nodes + one real agent: time to all active, cloud CPU/RSS,
    the real agent's swap pause (issue 6; see docs/rollouts.md)."""
    import json

    from edgecloud.bench import rollout as bench_rollout
    from edgecloud.dev.stack import DEV_PORTS, TEST_PORTS, default_state_dir, ensure_infra

    kind = "test" if test_stack else "dev"
    infra = ensure_infra(default_state_dir(kind), TEST_PORTS if test_stack else DEV_PORTS)
    wave_list = tuple(int(w) for w in waves.split(","))
    result = bench_rollout.run(infra, nodes=nodes, waves=wave_list)
    result.write(json_file)
    typer.echo(json.dumps(result.model_dump(), indent=2))


@app.command("fleet")
def fleet(
    nodes: Annotated[str, typer.Option(help="fleet sizes, comma-separated")] = "1000,3000,10000",
    wait: Annotated[float, typer.Option(min=1, max=60, help="long-poll seconds")] = 20.0,
    heartbeat_seconds: Annotated[
        float, typer.Option(min=0.5, help="each node's heartbeat period (the agent's default: 10)")
    ] = 10.0,
    probe_rate: Annotated[
        float, typer.Option(min=1, help="unheld desired-state requests/s measured meanwhile")
    ] = 20.0,
    settle_seconds: Annotated[
        float, typer.Option(help="measured seconds before the rollout")
    ] = 15.0,
    waves: Annotated[str, typer.Option(help="cumulative wave percentages")] = "10,50,100",
    json_file: Annotated[Path | None, typer.Option("--json", help="write the result here")] = None,
) -> None:
    """One cloud API + one worker against N simulated nodes (asyncio) long-polling desired
    state and heartbeating on Kafka, with a rollout in waves to all; per size: poll p99,
    heartbeat lag, rollout time, CPU/RSS, Postgres size (bench/fleet.py). A growth-curve SVG is
    written beside --json."""
    import json

    from edgecloud.bench import fleet as bench_fleet
    from edgecloud.bench.chart import fleet_chart
    from edgecloud.cli.dev import _ports
    from edgecloud.core.logging import configure_logging
    from edgecloud.dev.stack import External, default_state_dir, ensure_infra

    try:
        sizes = [int(x) for x in nodes.split(",") if x.strip()]
        wave_list = tuple(int(w) for w in waves.split(","))
    except ValueError as exc:
        raise typer.BadParameter(f"not a list of integers: {exc}") from exc
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter("sizes must be positive", param_hint="--nodes")
    configure_logging("WARNING", "text")
    # the dev stack's services, or the ones named by EDGECLOUD_DEV_* (scripts/bench-all.sh)
    infra = ensure_infra(default_state_dir("dev"), _ports(), External.from_env("EDGECLOUD_DEV_"))
    opts = bench_fleet.Options(
        wait_s=wait, heartbeat_s=heartbeat_seconds, probe_rate=probe_rate,
        settle_s=settle_seconds, waves=wave_list,
    )  # fmt: skip
    result = bench_fleet.run(infra, sizes, opts, say=lambda line: typer.echo(line, err=True))
    result.write(json_file)
    if json_file is not None:
        fleet_chart(result, json_file.with_suffix(".svg"))
    typer.echo(json.dumps(result.model_dump(), indent=2))
