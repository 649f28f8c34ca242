"""``edgecloud edge run``: every flag reaches the component that uses it, through the one
settings tree (``EdgeSettings``), with nothing read from the environment on the way down.

The flags are parsed by the real click command (``make_context``), the settings built as
``run`` builds them, and the agent's component tree built (SQLite store, MQTT clients not
connected). The ``--node-id`` case is the bug of issue 17: the model agent polled
``/nodes/edge-1/desired`` because its settings read ``EDGECLOUD_NODE_ID`` on their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer.main

from edgecloud.cli import app as cli_app
from edgecloud.cli.edge import settings_flags
from edgecloud.dev.process import wait_until
from edgecloud.edge.agent import Agent
from edgecloud.edge.models.agent import maybe_start
from edgecloud.edge.models.holder import ModelHolder
from edgecloud.edge.settings import EdgeSettings


def run_command() -> Any:
    root: Any = typer.main.get_command(cli_app)  # the real `edgecloud` command: edge -> run
    return root.commands["edge"].commands["run"]


def settings_from(args: list[str]) -> EdgeSettings:
    """What ``edge run ARGS`` builds: the parsed flags over the environment."""
    ctx = run_command().make_context("run", args)
    return EdgeSettings(**settings_flags(dict(ctx.params)))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("EDGECLOUD_"):
            monkeypatch.delenv(name)


class Recorder(ThreadingHTTPServer):
    paths: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        self.server.paths.append(self.path.split("?", 1)[0])
        self.send_response(503)  # "cloud unavailable": the agent waits and asks again
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cloud() -> Iterator[Recorder]:
    server = Recorder(("127.0.0.1", 0), _Handler)
    server.paths = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.usefixtures("clean_env")
def test_node_id_flag_reaches_the_model_agents_poll(
    cloud: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = cloud.server_address[:2]
    monkeypatch.setenv("EDGECLOUD_CLOUD_API_URL", f"http://{host!s}:{port}")
    monkeypatch.setenv("EDGECLOUD_NODE_TOKEN", "node-token-for-test")
    monkeypatch.setenv("EDGECLOUD_MODEL_STORE_DIR", str(tmp_path))
    monkeypatch.setenv("EDGECLOUD_DESIRED_RETRY_S", "0.05")
    db = f"sqlite:///{tmp_path / 'edge.db'}"
    edge = Agent(settings_from(["--node-id", "edge-7", "--database-url", db]))
    edge.store.close()
    # what Agent.start runs: the model agent from the tree's model agent config
    agent = maybe_start(edge.model_agent_settings, ModelHolder(), None, edge.inference_settings)
    assert agent is not None
    try:
        wait_until(lambda: len(cloud.paths) >= 2, timeout=30, what="two desired-state polls")
    finally:
        agent.stop()
    assert set(cloud.paths) == {"/api/v1/nodes/edge-7/desired"}


# The flags of ``edge run`` before they were generated from EdgeSettings: none may be lost.
OLD_FLAGS = {
    "--model", "--node-id", "--labels", "--mqtt-url", "--mqtt-username", "--mqtt-password",
    "--mqtt-client-id", "--database-url", "--operator-public-keys", "--batch-size",
    "--batch-window-ms", "--max-payload-bytes", "--events-per-message", "--heartbeat-interval-s",
    "--retention-hours", "--http-host", "--http-port", "--http-token", "--ts-max-past-s",
    "--ts-max-future-s", "--trace-sample", "--log-level", "--log-format", "--migrate",
    "--no-migrate",
}  # fmt: skip

# field -> (flag arguments, the value the field must then hold): distinctive, none a default;
# one per EdgeSettings field (a new field must be added here)
VALUES: dict[str, tuple[list[str], Any]] = {
    "model": (["--model", "/srv/bundles/m1"], "/srv/bundles/m1"),
    "node_id": (["--node-id", "edge-77"], "edge-77"),
    "node_labels": (["--labels", "site=s9,zone=z3"], "site=s9,zone=z3"),
    "mqtt_url": (["--mqtt-url", "mqtt://10.9.8.7:18883"], "mqtt://10.9.8.7:18883"),
    "mqtt_username": (["--mqtt-username", "user-q"], "user-q"),
    "mqtt_password": (["--mqtt-password", "pass-q"], "pass-q"),
    "mqtt_client_id": (["--mqtt-client-id", "cid-q"], "cid-q"),
    # paho loads these when the client is built: real files, written by tls_files()
    "mqtt_ca_file": (["--mqtt-ca-file", "CA"], "CA"),
    "mqtt_cert_file": (["--mqtt-cert-file", "CERT"], "CERT"),
    "mqtt_key_file": (["--mqtt-key-file", "KEY"], "KEY"),
    "mqtt_keepalive_s": (["--mqtt-keepalive-s", "47"], 47),
    "mqtt_client": (["--mqtt-client", "paho"], "paho"),
    "mqtt_session_expiry_s": (["--mqtt-session-expiry-s", "999"], 999),
    "database_url": (["--database-url", "sqlite:///DB"], "sqlite:///DB"),
    "operator_public_keys": (["--operator-public-keys", "/k/op.pub"], "/k/op.pub"),
    "device_shard": (["--device-shard", "2/3"], "2/3"),
    "batch_size": (["--batch-size", "1234"], 1234),
    "batch_window_ms": (["--batch-window-ms", "37.5"], 37.5),
    "max_payload_bytes": (["--max-payload-bytes", "4321"], 4321),
    "events_per_message": (["--events-per-message", "77"], 77),
    "tensor_store": (["--tensor-store", "blob"], "blob"),
    "event_tensors": (["--event-tensors"], True),
    "heartbeat_interval_s": (["--heartbeat-interval-s", "3.25"], 3.25),
    "retention_hours": (["--retention-hours", "5.5"], 5.5),
    "retention_interval_s": (["--retention-interval-s", "12.5"], 12.5),
    "retention_chunk": (["--retention-chunk", "321"], 321),
    "http_host": (["--http-host", "0.0.0.0"], "0.0.0.0"),  # off loopback: needs the token below
    "http_port": (["--http-port", "18555"], 18555),
    "http_token": (["--http-token", "t" * 20], "t" * 20),
    "ts_max_past_s": (["--ts-max-past-s", "1111"], 1111.0),
    "ts_max_future_s": (["--ts-max-future-s", "222"], 222.0),
    "dapr_http_port": (["--dapr-http-port", "18600"], 18600),
    "dapr_grpc_port": (["--dapr-grpc-port", "18601"], 18601),
    "dapr_pubsub": (["--dapr-pubsub", "pubsub-q"], "pubsub-q"),
    "dapr_secret_store": (["--dapr-secret-store", "secrets-q"], "secrets-q"),
    "dapr_config_store": (["--dapr-config-store", "config-q"], "config-q"),
    "migrate": (["--no-migrate"], False),
    "env": (["--env", "production"], "production"),
    "trace_sample": (["--trace-sample", "9"], 9),
    "log_level": (["--log-level", "WARNING"], "WARNING"),
    "log_format": (["--log-format", "text"], "text"),
    # the sub-components' fields (one tree: inference, cloud link, model agent, device agent)
    "ort_providers": (["--ort-providers", "CPUExecutionProvider"], "CPUExecutionProvider"),
    "ort_intra_op_threads": (["--ort-intra-op-threads", "3"], 3),
    "ort_inter_op_threads": (["--ort-inter-op-threads", "2"], 2),
    "ort_allow_spinning": (["--ort-allow-spinning"], True),
    "inference_max_batch": (["--inference-max-batch", "333"], 333),
    "inference_max_state_devices": (["--inference-max-state-devices", "4444"], 4444),
    "require_signature": (["--no-require-signature"], False),
    "max_model_bytes": (["--max-model-bytes", "9999999"], 9999999),
    "cloud_api_url": (["--cloud-api-url", "http://10.2.2.2:8444"], "http://10.2.2.2:8444"),
    "node_token": (["--node-token", "node-tok-q"], "node-tok-q"),
    "desired_wait_s": (["--desired-wait-s", "7.5"], 7.5),
    "desired_retry_s": (["--desired-retry-s", "0.75"], 0.75),
    "model_store_dir": (["--model-store-dir", "/srv/models-q"], Path("/srv/models-q")),
    "shadow_timeout_s": (["--shadow-timeout-s", "123.5"], 123.5),
    "model_status_via": (["--model-status-via", "http"], "http"),
    "devices_mqtt_url": (["--devices-mqtt-url", "mqtt://10.1.1.1:18884"], "mqtt://10.1.1.1:18884"),
    "devices_password_file": (["--devices-password-file", "/srv/pw-q"], Path("/srv/pw-q")),
    "devices_broker_pid_file": (["--devices-broker-pid-file", "/srv/pid-q"], Path("/srv/pid-q")),
    "devices_state_dir": (["--devices-state-dir", "/srv/dev-q"], Path("/srv/dev-q")),
}


def tls_files(folder: Path) -> dict[str, str]:
    """A CA and a client certificate of the project's own PKI (``core/pki.py``)."""
    from edgecloud.core.pki import init_ca, issue

    ca = init_ca(folder / "ca")
    issued = issue(ca, "edge-77")
    (folder / "ca.pem").write_bytes(ca.pem)
    (folder / "c.pem").write_text(issued.cert_pem)
    (folder / "c.key").write_text(issued.key_pem or "")
    return {
        "CA": str(folder / "ca.pem"),
        "CERT": str(folder / "c.pem"),
        "KEY": str(folder / "c.key"),
    }


def _value(s: EdgeSettings, field: str) -> Any:
    v = getattr(s, field)
    return v.get_secret_value() if hasattr(v, "get_secret_value") else v


def _option_names() -> set[str]:
    params = run_command().params
    return {
        n for p in params if p.param_type_name == "option" for n in (*p.opts, *p.secondary_opts)
    }


def test_no_flag_lost_and_one_flag_per_field() -> None:
    names = _option_names()
    assert names >= OLD_FLAGS, f"flags lost: {sorted(OLD_FLAGS - names)}"
    fields = {p.name for p in run_command().params if p.param_type_name == "option"}
    fields = {"node_labels" if f == "labels" else f for f in fields}
    assert fields == set(EdgeSettings.model_fields), "every settings field is a flag"
    for field in EdgeSettings.model_fields:
        assert "--" + field.replace("_", "-") in names, field  # the field's own name works too


def test_help_documents_every_flag_with_its_env_name_and_default() -> None:
    from typer.testing import CliRunner

    out = CliRunner().invoke(cli_app, ["edge", "run", "--help"], env={"COLUMNS": "400"}).output
    flat = " ".join(out.replace("│", " ").split())
    for field in EdgeSettings.model_fields:
        assert f"EDGECLOUD_{field.upper()}" in flat, field
    assert "(env EDGECLOUD_BATCH_SIZE, default 2000)" in flat
    assert "(env EDGECLOUD_MIGRATE, default on)" in flat
    assert "<native|paho>" in flat  # a Literal field is a choice


@pytest.mark.usefixtures("clean_env")
def test_an_unset_flag_leaves_the_environment_in_charge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_BATCH_SIZE", "555")
    monkeypatch.setenv("EDGECLOUD_REQUIRE_SIGNATURE", "false")
    s = settings_from(["--node-id", "edge-5"])
    assert (s.node_id, s.batch_size, s.require_signature) == ("edge-5", 555, False)
    assert settings_from(["--batch-size", "9"]).batch_size == 9  # the flag wins
    ctx = run_command().make_context("run", ["--migrate"])
    assert settings_flags(dict(ctx.params)) == {"migrate": True}


@pytest.mark.usefixtures("clean_env")
def test_a_bad_value_is_a_clear_cli_error() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli_app, ["edge", "run", "--batch-size", "0"])
    assert result.exit_code == 1
    assert "batch_size" in result.output and "greater than or equal to 1" in result.output
    result = CliRunner().invoke(cli_app, ["edge", "run", "--mqtt-client", "zmq"])
    assert result.exit_code == 2 and "zmq" in result.output


@pytest.mark.usefixtures("clean_env")
def test_every_flag_reaches_the_component_tree(tmp_path: Path) -> None:
    assert set(VALUES) == set(EdgeSettings.model_fields), "every field needs a value here"
    args = [a for name in sorted(VALUES) for a in VALUES[name][0]]
    real = {"sqlite:///DB": f"sqlite:///{tmp_path / 'edge.db'}", **tls_files(tmp_path)}
    args = [real.get(a, a) for a in args]
    s = settings_from(args)
    for name, (_, want) in VALUES.items():
        assert _value(s, name) == real.get(want, want), name
    agent = Agent(s)
    try:
        # the sub-components' configs carry the tree's values for every field they share
        for sub in (agent.model_agent_settings, agent.device_agent_settings,
                    agent.inference_settings):  # fmt: skip
            for field in type(sub).model_fields:
                assert getattr(sub, field) == _value(s, field), (type(sub).__name__, field)
        assert agent.model_agent_settings.node_id == "edge-77"
        assert agent.model_agent_settings.cloud_api_url == "http://10.2.2.2:8444"
        assert agent.device_agent_settings.node_id == "edge-77"
        assert agent.device_agent_settings.mqtt_url == "mqtt://10.9.8.7:18883"
        assert agent.inference_settings.operator_public_keys == "/k/op.pub"
        assert agent.inference_settings.inference_max_batch == 333
        # and the components built from them
        assert agent.outbox._topic == "edgecloud/edge-77/events/reading"
        assert agent.outbox._per_message == 77
        assert str(agent.store.engine.url) == real["sqlite:///DB"]
        sub_cfg = agent.subscriber._config  # type: ignore[attr-defined]
        assert (sub_cfg.host, sub_cfg.port) == ("10.9.8.7", 18883)
        assert (sub_cfg.username, sub_cfg.password) == ("user-q", "pass-q")
        tls = (sub_cfg.ca_file, sub_cfg.cert_file, sub_cfg.key_file)
        assert tls == (real["CA"], real["CERT"], real["KEY"])
        assert (sub_cfg.keepalive_s, sub_cfg.client, sub_cfg.session_expiry_s) == (47, "paho", 999)
        assert agent.subscriber._client_id == "cid-q"  # type: ignore[attr-defined]
        assert agent._shard == (2, 3)
        assert (agent.live.default_batch_size, agent.live.default_batch_window_ms) == (1234, 37.5)
        assert agent.decisions.pubsub == "pubsub-q"
        assert agent.config_watch.store == "config-q"
        dapr = agent.config_watch.config
        assert (dapr.http_port, dapr.grpc_port) == (18600, 18601)
    finally:
        agent.store.close()
