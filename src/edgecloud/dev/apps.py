"""The application processes of ``edgecloud dev up``: one table, ``app_specs``.

Each app is the real CLI command (``edgecloud cloud api``, ``cloud worker``, ``edge run``,
``bridge run``) started detached with its settings in the environment (names in
docs/design.md). To add a process, add a spec here; ``dev up``, ``dev status`` and ``dev down``
pick it up. An app that exits at once is reported with its exit code and last log lines; it
does not stop ``dev up``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgecloud.dev import process, roles
from edgecloud.dev.mosquitto import DYNSEC_ACCOUNT, node_account
from edgecloud.dev.stack import Infra

CLOUD_API_PORT = 8400
CLOUD_DATABASE = "cloud"
TOKEN_SCOPES = ("read", "operate", "admin")


def _port_env(name: str, default: int) -> int:
    """App ports move with ``EDGECLOUD_DEV_API_PORT`` / ``_AGENT_PORT_BASE`` /
    ``_BRIDGE_PORT_BASE`` (a private stack beside the dev one, e.g. the demo test)."""
    value = os.environ.get(name)
    return int(value) if value else default


def cloud_api_port() -> int:
    return _port_env("EDGECLOUD_DEV_API_PORT", CLOUD_API_PORT)


def agent_http_port(index: int) -> int:
    return _port_env("EDGECLOUD_DEV_AGENT_PORT_BASE", 8410) + index


def bridge_http_port(index: int) -> int:
    return _port_env("EDGECLOUD_DEV_BRIDGE_PORT_BASE", 8460) + index


def dev_public_key() -> Path | None:
    """``models/dev-keys/dev.pub`` of the checkout: the key the committed bundles are signed
    with, trusted by the local stack's agents (development only, see docs/models.md)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "models" / "dev-keys" / "dev.pub"
        if candidate.exists():
            return candidate
    return None


def service_database_url(infra: Infra, role: str, database: str) -> str:
    """The URL a service uses: its own Postgres role (``dev/roles.py``), or, with a
    bring-your-own Postgres, the given URL."""
    admin = None if infra.external.postgres_url else infra.pg_admin_url
    return roles.database_url(admin, infra.database_url(database), role, database)


def service_databases(nodes: int) -> dict[str, list[str]]:
    """Each database of the stack -> the roles that use it."""
    dbs = {CLOUD_DATABASE: [roles.CLOUD_API, roles.CLOUD_WORKER]}
    dbs.update({node_database(n): [roles.node_role(n)] for n in node_ids(nodes)})
    return dbs


def node_ids(nodes: int) -> list[str]:
    return [f"edge-{i}" for i in range(1, nodes + 1)]


def node_database(node_id: str) -> str:
    """``edge-1`` -> ``edge_1`` (one Postgres database per edge node)."""
    return node_id.replace("-", "_").replace(".", "_")


def cli() -> list[str]:
    """The ``edgecloud`` executable of this interpreter's environment."""
    beside = Path(sys.executable).parent / "edgecloud"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("edgecloud")
    if found:
        return [found]
    return [sys.executable, "-c", "from edgecloud.cli import main; main()"]


@dataclass(frozen=True)
class AppSpec:
    name: str  # key in ``dev status --json`` "processes"
    argv: list[str]
    env: dict[str, str]
    node_id: str | None = None
    health_url: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def worker_metrics_port() -> int:
    """``EDGECLOUD_DEV_WORKER_METRICS_PORT`` (default 8491): the worker's /metrics, scraped by
    the stack's Prometheus."""
    return _port_env("EDGECLOUD_DEV_WORKER_METRICS_PORT", 8491)


def cloud_api_url() -> str:
    return f"http://127.0.0.1:{cloud_api_port()}"


def app_specs(infra: Infra, nodes: int) -> list[AppSpec]:
    state = infra.state_dir
    common = {
        "EDGECLOUD_ENV": "development",
        "EDGECLOUD_LOG_FORMAT": "json",
        "EDGECLOUD_MQTT_URL": infra.mqtt_url,
        "EDGECLOUD_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "EDGECLOUD_CLOUD_API_URL": cloud_api_url(),
        # one log line per hop for every reading (edgecloud trace); bench e2e turns it off
        "EDGECLOUD_TRACE_SAMPLE": os.environ.get("EDGECLOUD_TRACE_SAMPLE", "1"),
    }
    # own roles (dev/roles.py): `dev up` migrated as edgecloud_migrate, the apps do not
    own = not infra.external.postgres_url
    api_db = {
        "EDGECLOUD_DATABASE_URL": service_database_url(infra, roles.CLOUD_API, CLOUD_DATABASE)
    }
    worker_db = {
        "EDGECLOUD_DATABASE_URL": service_database_url(infra, roles.CLOUD_WORKER, CLOUD_DATABASE),
        **({"EDGECLOUD_WORKER_MIGRATE": "false"} if own else {}),
    }
    # the retraining job signs candidates with the development key (docs/learning.md)
    dev_priv = dev_public_key()
    retrain = {"EDGECLOUD_RETRAIN_SIGNING_KEY": str(dev_priv.with_suffix(".key"))} if (
        dev_priv is not None and "EDGECLOUD_RETRAIN_SIGNING_KEY" not in os.environ
    ) else {}  # fmt: skip
    specs = [
        AppSpec(
            "cloud_api",
            [*cli(), "cloud", "api", *(["--no-migrate"] if own else [])],
            {**common, **api_db, **retrain, "EDGECLOUD_API_PORT": str(cloud_api_port())},
            health_url=f"{cloud_api_url()}/healthz",
        ),
        AppSpec(
            "cloud_worker",
            [*cli(), "cloud", "worker"],
            {
                **common,
                **worker_db,
                **infra.kafka_client("worker").env(),  # SASL user worker (dev/kafka_auth.py)
                "EDGECLOUD_WORKER_METRICS_PORT": str(worker_metrics_port()),
            },
        ),
    ]
    node_tokens = _stored_node_tokens(state)
    dev_key = dev_public_key()
    for index, node in enumerate(node_ids(nodes), start=1):
        labels = {"site": f"site-{index}"}
        # One broker serves every node here: each takes only its share of the devices.
        shard = {"EDGECLOUD_DEVICE_SHARD": f"{index}/{nodes}"} if nodes > 1 else {}
        model_agent = {"EDGECLOUD_MODEL_STORE_DIR": str(state / "models" / node)}
        if node in node_tokens:
            model_agent["EDGECLOUD_NODE_TOKEN"] = node_tokens[node]
        if dev_key is not None and "EDGECLOUD_OPERATOR_PUBLIC_KEYS" not in os.environ:
            model_agent["EDGECLOUD_OPERATOR_PUBLIC_KEYS"] = str(dev_key)
        node_env = {
            **common,
            "EDGECLOUD_NODE_ID": node,
            "EDGECLOUD_NODE_LABELS": ",".join(f"{k}={v}" for k, v in labels.items()),
        }
        agent_user, agent_pw, bridge_user, bridge_pw, devices = _node_mqtt(infra, node)
        specs.append(
            AppSpec(
                f"edge_agent.{node}",
                [*cli(), "edge", "run"],
                {
                    **node_env,
                    "EDGECLOUD_DATABASE_URL": service_database_url(
                        infra, roles.node_role(node), node_database(node)
                    ),
                    **({"EDGECLOUD_MIGRATE": "false"} if own else {}),
                    "EDGECLOUD_MQTT_USERNAME": agent_user,
                    "EDGECLOUD_MQTT_PASSWORD": agent_pw,
                    "EDGECLOUD_HTTP_PORT": str(agent_http_port(index)),
                    **shard,
                    **model_agent,
                    **devices,
                },
                node_id=node,
                health_url=f"http://127.0.0.1:{agent_http_port(index)}/healthz",
                labels=labels,
            )
        )
        specs.append(
            AppSpec(
                f"bridge.{node}",
                [*cli(), "bridge", "run"],
                {
                    **node_env,
                    **infra.kafka_client("bridge").env(),  # SASL user bridge
                    "EDGECLOUD_MQTT_USERNAME": bridge_user,
                    "EDGECLOUD_MQTT_PASSWORD": bridge_pw,
                    "EDGECLOUD_BRIDGE_HTTP_PORT": str(bridge_http_port(index)),
                    "EDGECLOUD_SPOOL_DIR": str(state / "spool" / node),
                },
                node_id=node,
                labels=labels,
            )
        )
    return specs


def agent_mqtt_account(infra: Infra, node: str) -> tuple[str, str]:
    """(username, password) of node ``node``'s agent (its sidecar's secret store holds it)."""
    user, pw, *_ = _node_mqtt(infra, node)
    return user, pw


def _node_mqtt(infra: Infra, node: str) -> tuple[str, str, str, str, dict[str, str]]:
    """The node's own MQTT accounts (``agent@NODE``, ``bridge@NODE``: only its own events
    topic, issue 16) and its device agent's settings (the ``dynsec`` account applies the
    registry's devices to the broker); an external broker's one account otherwise."""
    if not infra.mqtt_managed:
        user, pw = infra.mqtt_account("edge-agent")
        return user, pw, user, pw, {}
    agent = infra.mqtt_account(node_account("agent", node))
    bridge = infra.mqtt_account(node_account("bridge", node))
    dyn_user, dyn_pw = infra.mqtt_account(DYNSEC_ACCOUNT)
    broker = infra.mosquitto
    host = f"{infra.mqtt_host}:{infra.mqtt_port}"
    devices = {
        "EDGECLOUD_DEVICES_MQTT_URL": f"mqtt://{dyn_user}:{dyn_pw}@{host}",
        "EDGECLOUD_DEVICES_PASSWORD_FILE": str(broker.password_file),
        "EDGECLOUD_DEVICES_BROKER_PID_FILE": str(broker.pid_file),
        "EDGECLOUD_DEVICES_STATE_DIR": str(infra.state_dir / "devices" / node),
    }
    return *agent, *bridge, devices


class AppProcess:
    """One app of the table: pid file ``run/app-<name>.pid``, log ``logs/<name>.log``."""

    def __init__(self, state_dir: Path, name: str) -> None:
        self.name = name
        self.pid_file = state_dir / "run" / f"app-{name}.pid"
        self.exit_file = state_dir / "run" / f"app-{name}.exit"
        self.log_file = state_dir / "logs" / f"{name}.log"

    def pid(self) -> int | None:
        return process.read_pid(self.pid_file, marker="edgecloud")

    def start(self, spec: AppSpec) -> int:
        pid = self.pid()
        if pid is not None:
            return pid
        self.exit_file.unlink(missing_ok=True)
        env = {**os.environ, **spec.env}
        pid = process.spawn(spec.argv, self.log_file, env=env)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def reap(self, pid: int) -> int | None:
        """Exit code of our child ``pid`` if it has ended (recorded for ``dev status``)."""
        code = process.exit_code(pid)
        if code is not None:
            info = {"code": code, "tail": process.tail(self.log_file)}
            self.exit_file.write_text(json.dumps(info))
        return code

    def exit_info(self) -> dict[str, object] | None:
        try:
            info: dict[str, object] = json.loads(self.exit_file.read_text())
        except (OSError, ValueError):
            return None
        return info

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            process.terminate(pid, signal.SIGTERM, timeout=15.0)
        self.pid_file.unlink(missing_ok=True)


def _create_token(infra: Infra, scope: str, name: str, node_id: str | None = None) -> str | None:
    url = service_database_url(infra, roles.CLOUD_API, CLOUD_DATABASE)
    env = {**os.environ, "EDGECLOUD_DATABASE_URL": url}
    argv = [*cli(), "token", "create", "--scope", scope, "--name", name]
    if node_id is not None:
        argv += ["--node-id", node_id]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return None
    last = lines[-1].strip()
    if last.startswith("{"):
        last = str(json.loads(last).get("token", ""))
    return last or None


def _stored_node_tokens(state_dir: Path) -> dict[str, str]:
    try:
        stored: dict[str, str] = json.loads((state_dir / "node-tokens.json").read_text())
    except (OSError, ValueError):
        return {}
    return stored


def load_node_tokens(infra: Infra, nodes: int) -> dict[str, str]:
    """Node-scope tokens (``token create --scope node --node-id edge-i``), made once per node
    and kept in ``node-tokens.json``; the agents' model agent follows the cloud with them."""
    path = infra.state_dir / "node-tokens.json"
    tokens = _stored_node_tokens(infra.state_dir)
    missing = [n for n in node_ids(nodes) if n not in tokens]
    for node in missing:
        token = _create_token(infra, "node", f"dev-node-{node}", node)
        if token is None:
            break
        tokens[node] = token
    if missing:
        path.write_text(json.dumps(tokens))
        path.chmod(0o600)
    return tokens


def load_tokens(infra: Infra) -> dict[str, str] | None:
    """API tokens for ``dev status`` (scopes read / operate / admin), made once per state dir.

    Runs ``edgecloud token create --scope S --name dev-S`` against the cloud database and takes
    the token from the last line of its output (or the ``token`` key of a JSON object). Until
    that command exists (it exits 2 today) the tokens stay ``None``.
    """
    path = infra.state_dir / "tokens.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    tokens: dict[str, str] = {}
    for scope in TOKEN_SCOPES:
        token = _create_token(infra, scope, f"dev-{scope}")
        if token is None:
            return None
        tokens[scope] = token
    path.write_text(json.dumps(tokens))
    path.chmod(0o600)
    return tokens
