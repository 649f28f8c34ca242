"""``edgecloud cloud api`` / ``cloud worker``: options generated from ``CloudSettings`` (the
role's one tree), every old flag kept, every field a flag of the command that uses it."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main

from edgecloud.cli import app as cli_app
from edgecloud.cli import cloud
from edgecloud.cloud.settings import CloudSettings

# the flags before they were generated: none may be lost
OLD = {
    "api": {
        "--host", "--port", "--database-url", "--max-body-bytes", "--log-level", "--log-format",
        "--access-log", "--no-access-log", "--migrate", "--no-migrate",
    },
    "worker": {
        "--database-url", "--kafka-bootstrap", "--topic-prefix", "--group-id", "--batch-size",
        "--metrics-port", "--trace-sample", "--log-level", "--log-format", "--migrate",
        "--no-migrate",
    },
}  # fmt: skip


def command(name: str) -> Any:
    root: Any = typer.main.get_command(cli_app)
    return root.commands["cloud"].commands[name]


def settings_from(name: str, args: list[str]) -> CloudSettings:
    params = command(name).make_context(name, args).params
    field_of: dict[str, str] = getattr(cloud, name).field_of
    return CloudSettings(**{field_of[k]: v for k, v in params.items() if v is not None})


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("EDGECLOUD_", "OPENAI_")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("name", ["api", "worker"])
def test_no_old_flag_lost(name: str) -> None:
    params = [p for p in command(name).params if p.param_type_name == "option"]
    names = {n for p in params for n in (*p.opts, *p.secondary_opts)}
    assert OLD[name] <= names, f"flags lost: {sorted(OLD[name] - names)}"


def test_every_field_is_a_flag_of_api_or_worker() -> None:
    fields: set[str] = set()
    for name in ("api", "worker"):
        field_of: dict[str, str] = getattr(cloud, name).field_of
        fields |= set(field_of.values())
    assert fields == set(CloudSettings.model_fields)
    api = set(cloud.api.field_of.values())  # type: ignore[attr-defined]
    worker = set(cloud.worker.field_of.values())  # type: ignore[attr-defined]
    assert "worker_batch_size" not in api and "api_port" not in worker
    assert "registry_dir" in api and "registry_dir" not in worker


@pytest.mark.usefixtures("clean_env")
def test_flags_reach_the_tree_old_names_and_field_names() -> None:
    s = settings_from(
        "api",
        ["--host", "0.0.0.0", "--port", "18401", "--no-access-log", "--no-migrate",
         "--api-db-pool", "33", "--rollout-tick-s", "0.2", "--openai-api-key", "sk-q"],
    )  # fmt: skip
    assert (s.api_host, s.api_port, s.api_access_log, s.api_migrate) == (
        "0.0.0.0", 18401, False, False
    )  # fmt: skip
    assert (s.api_db_pool, s.openai_api_key) == (33, "sk-q")
    assert s.registry_settings().rollout_tick_s == 0.2
    w = settings_from(
        "worker",
        ["--group-id", "g-q", "--batch-size", "77", "--worker-poll-timeout-s", "0.3",
         "--metrics-port", "18495", "--no-migrate", "--escalation-max-tokens", "99",
         "--topic-prefix", "pq."],
    )  # fmt: skip
    assert (w.kafka_group_id, w.worker_batch_size, w.worker_poll_timeout_s) == ("g-q", 77, 0.3)
    assert (w.worker_metrics_port, w.worker_migrate, w.escalation_max_tokens) == (18495, False, 99)
    assert w.kafka_connection().bootstrap == "127.0.0.1:19092" and w.kafka_topic_prefix == "pq."


def test_help_names_the_env_of_every_field() -> None:
    from typer.testing import CliRunner

    for name in ("api", "worker"):
        out = CliRunner().invoke(cli_app, ["cloud", name, "--help"], env={"COLUMNS": "400"})
        flat = " ".join(out.output.replace("│", " ").split())
        for field in getattr(cloud, name).field_of.values():
            info = CloudSettings.model_fields[field]
            env = "OPENAI_" + field[7:].upper() if field.startswith("openai_") else field.upper()
            assert (env if env.startswith("OPENAI_") else "EDGECLOUD_" + env) in flat, (name, info)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("name", "args", "expect"),
    [
        ("api", ["--port", "18402", "--no-migrate", "--no-access-log"],
         {"api_port": 18402, "api_migrate": False, "api_access_log": False}),
        ("worker", ["--batch-size", "55", "--no-migrate", "--group-id", "g-main"],
         {"worker_batch_size": 55, "worker_migrate": False, "kafka_group_id": "g-main"}),
    ],
)  # fmt: skip
def test_the_command_hands_its_tree_to_cloud_main(
    monkeypatch: pytest.MonkeyPatch, name: str, args: list[str], expect: dict[str, Any]
) -> None:
    """The CLI builds the tree and calls ``cloud/main.py``'s function of that process, once."""
    from typer.testing import CliRunner

    import edgecloud.cloud.main as cloud_main

    got: list[CloudSettings] = []
    monkeypatch.setattr(cloud_main, name, got.append)
    out = CliRunner().invoke(cli_app, ["cloud", name, *args])
    assert out.exit_code == 0, out.output
    assert len(got) == 1
    assert {k: getattr(got[0], k) for k in expect} == expect
