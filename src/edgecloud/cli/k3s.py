"""``edgecloud k3s``: provision an edge node or the cloud side on Kubernetes (docs/deploy-k3s.md).

edgecloud k3s apply --node edge-1 --labels site=berlin [--kubeconfig F] [--context C]
edgecloud k3s status --node edge-1 [--json]
edgecloud k3s delete --node edge-1
edgecloud k3s apply --cloud --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgecloud.cli._common import fail

if TYPE_CHECKING:
    from edgecloud.adapters.kube import Kube
    from edgecloud.deploy.k3s import Target

app = typer.Typer(
    help="Deploy an edge node or the cloud side to Kubernetes (k3s) by server-side apply.",
    no_args_is_help=True,
)

NodeOption = Annotated[
    str | None, typer.Option("--node", help="the edge node (its id; names the namespace)")
]
CloudOption = Annotated[bool, typer.Option("--cloud", help="the cloud side instead of a node")]
KubeconfigOption = Annotated[
    Path | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
]
ContextOption = Annotated[str | None, typer.Option(help="kubeconfig context (default: current)")]


def _target(node: str | None, cloud: bool, labels: list[str] | None = None) -> Target:
    from edgecloud.cli.device import parse_labels
    from edgecloud.core.errors import ValidationFailed
    from edgecloud.deploy.k3s import Target

    if cloud == (node is not None):
        fail("give exactly one of --node NAME or --cloud", code=2)
    if node is None:
        return Target.cloud()
    try:
        return Target.edge(node, parse_labels(labels or []))
    except ValidationFailed as exc:
        fail(str(exc), code=2)


def _kube(kubeconfig: Path | None, context: str | None) -> Kube:
    from edgecloud.adapters.kube import Kube

    return Kube(kubeconfig, context)


def _node_token(cloud_url: str, cloud_token: str, node: str) -> str:
    """A node-scope token from the cloud API (``POST /api/v1/tokens``, admin token)."""
    import httpx

    try:
        resp = httpx.post(
            cloud_url.rstrip("/") + "/api/v1/tokens",
            json={"scope": "node", "name": f"k3s-{node}", "node_id": node},
            headers={"Authorization": f"Bearer {cloud_token}"},
            timeout=15.0,
        )
    except httpx.HTTPError as exc:
        fail(f"{cloud_url}: cannot reach the cloud API ({exc})")
    if resp.status_code != 201:
        fail(f"{cloud_url}: POST /api/v1/tokens answered {resp.status_code}: {resp.text[:300]}")
    return str(resp.json()["token"])


@app.command("apply")
def apply(
    node: NodeOption = None,
    cloud: CloudOption = False,
    labels: Annotated[
        list[str] | None, typer.Option("--labels", help="node labels k=v[,k=v] (repeatable)")
    ] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    cloud_url: Annotated[
        str | None, typer.Option(help="cloud API: the node token is made there (POST /tokens)")
    ] = None,
    cloud_token: Annotated[
        str | None, typer.Option(help="admin token of --cloud-url (env EDGECLOUD_API_TOKEN)")
    ] = None,
    operator_public_keys: Annotated[
        Path | None, typer.Option(help="file of the operators' public keys (model signatures)")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="--cloud: the cloud database (kept in the Secret)")
    ] = None,
    openai_api_key: Annotated[str | None, typer.Option(help="--cloud: kept in the Secret")] = None,
    kafka_brokers: Annotated[
        str | None,
        typer.Option(help="--cloud: Kafka of the Dapr pub/sub (default kafka.kafka.svc:9092)"),
    ] = None,
    kafka_sasl_username: Annotated[
        str | None, typer.Option(help="--cloud: SASL/SCRAM account of the Dapr pub/sub")
    ] = None,
    kafka_sasl_password: Annotated[
        str | None, typer.Option(help="--cloud: its password (kept in the Secret)")
    ] = None,
    kafka_sasl_mechanism: Annotated[
        str | None, typer.Option(help="--cloud: SHA-512 (default), SHA-256 or PLAINTEXT")
    ] = None,
    alert_webhook_url: Annotated[
        str | None,
        typer.Option(help="--cloud: the alert-webhook binding's URL (default: one that discards)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="server-side dry run only")] = False,
) -> None:
    """Create or update the namespace, Secret, ConfigMaps and workloads (idempotent)."""
    import os

    from edgecloud.core.errors import EdgecloudError
    from edgecloud.deploy import k3s

    target = _target(node, cloud, labels)
    given: dict[str, str] = {}
    if operator_public_keys is not None:
        given["operator-public-keys"] = operator_public_keys.read_text()
    if cloud:
        given.update({"database-url": database_url or "", "openai-api-key": openai_api_key or ""})
        dapr = {
            "kafka-brokers": kafka_brokers,
            "kafka-sasl-username": kafka_sasl_username,
            "kafka-sasl-password": kafka_sasl_password,
            "kafka-sasl-mechanism": kafka_sasl_mechanism,
            "alert-webhook-url": alert_webhook_url,
        }
        given.update({k: v for k, v in dapr.items() if v})
    token = cloud_token or os.environ.get("EDGECLOUD_API_TOKEN")
    if cloud_url and not token:
        fail("--cloud-url needs --cloud-token (or EDGECLOUD_API_TOKEN)", code=2)
    try:
        kube = _kube(kubeconfig, context)
        mint = None
        if cloud_url and token and target.node:
            node_id, url = target.node, cloud_url
            mint = lambda: _node_token(url, token, node_id)  # noqa: E731
        secret = k3s.secret_for(kube, target, given, mint)
        applied = k3s.apply(kube, k3s.render(target, secret), dry_run=dry_run)
    except EdgecloudError as exc:
        fail(str(exc))
    verb = "checked (dry run)" if dry_run else "applied"
    for obj in applied:
        typer.echo(f"{verb} {obj['kind']}/{obj['metadata']['name']}")
    typer.echo(f"{target.namespace}: {len(applied)} objects {verb}")


@app.command("status")
def status(
    node: NodeOption = None,
    cloud: CloudOption = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """Each workload's readiness (ready/desired replicas); exit 1 when one is missing."""
    from edgecloud.core.errors import EdgecloudError
    from edgecloud.deploy import k3s

    target = _target(node, cloud)
    try:
        rows = k3s.status(_kube(kubeconfig, context), k3s.render(target, _placeholder(target)))
    except EdgecloudError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"namespace": target.namespace, "workloads": rows}, indent=2))
    else:
        _table(rows)
    if not all(r["exists"] for r in rows):
        raise typer.Exit(code=1)


@app.command("delete")
def delete(
    node: NodeOption = None,
    cloud: CloudOption = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Delete every object ``apply`` made, the namespace last."""
    from edgecloud.core.errors import EdgecloudError
    from edgecloud.deploy import k3s

    target = _target(node, cloud)
    try:
        gone = k3s.delete(_kube(kubeconfig, context), k3s.render(target, _placeholder(target)))
    except EdgecloudError as exc:
        fail(str(exc))
    typer.echo(f"{target.namespace}: {len(gone)} objects deleted")


def _placeholder(target: Target) -> dict[str, Any]:
    """The Secret's identity without values (status and delete need only names)."""
    meta = {"name": f"edgecloud-{target.role}", "namespace": target.namespace}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta}


def _table(rows: list[dict[str, Any]]) -> None:
    typer.echo(f"{'KIND':<12} {'NAME':<16} {'READY':<7} {'UP-TO-DATE':<10} STATUS")
    for r in rows:
        state = "missing" if not r["exists"] else ("ready" if r["is_ready"] else "not ready")
        ready = f"{r['ready']}/{r['desired']}"
        typer.echo(f"{r['kind']:<12} {r['name']:<16} {ready:<7} {r['updated']:<10} {state}")
