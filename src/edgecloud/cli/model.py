"""``edgecloud model``: sign and upload bundles, list registered models, trust operator keys,
deprecate or delete a version (audited: ``model audit``).

Talks to the cloud API (``--api-url`` / EDGECLOUD_CLOUD_API_URL) with an ``operate`` token
(``--token`` / EDGECLOUD_API_TOKEN; without one, the dev stack's, from
``$EDGECLOUD_STATE_DIR/tokens.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecloud.cli._common import fail

app = typer.Typer(
    help="Model registry: sign and upload bundles, list models.", no_args_is_help=True
)

DEFAULT_API_URL = "http://127.0.0.1:8400"
ApiUrl = Annotated[str, typer.Option(envvar="EDGECLOUD_CLOUD_API_URL", help="cloud API base URL")]
Token = Annotated[
    str | None,
    typer.Option(envvar="EDGECLOUD_API_TOKEN", help="API token (default: the dev stack's)"),
]


def dev_token(scope: str) -> str | None:
    state = Path(os.environ.get("EDGECLOUD_STATE_DIR", "~/.cache/edgecloud/dev")).expanduser()
    try:
        tokens = json.loads((state / "tokens.json").read_text())
    except (OSError, ValueError):
        return None
    token = tokens.get(scope) if isinstance(tokens, dict) else None
    return str(token) if token else None


def resolve_token(token: str | None, scope: str) -> str:
    token = token or dev_token(scope)
    if not token:
        fail(f"no API token: pass --token or set EDGECLOUD_API_TOKEN (a {scope}-scope token)")
    return token


def api_call(method: str, api_url: str, token: str, path: str, **kwargs: Any) -> Any:
    """One request; a non-2xx answer or an unreachable API ends the command with its message."""
    import httpx

    try:
        res = httpx.request(
            method, api_url.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"},
            timeout=kwargs.pop("timeout", 30.0), **kwargs,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        fail(f"cannot reach the cloud API at {api_url}: {exc}")
    if res.status_code >= 300:
        try:
            body = res.json()
            detail = f"{body.get('error')}: {body.get('detail')}"
        except ValueError:
            detail = res.text[:500]
        fail(f"cloud API answered {res.status_code}: {detail}")
    return None if res.status_code == 204 else res.json()


@app.command("push")
def push(
    folder: Annotated[Path, typer.Argument(help="bundle folder: manifest.yaml + the ONNX file")],
    key: Annotated[
        Path | None,
        typer.Option(envvar="EDGECLOUD_OPERATOR_KEY", help="operator private key (PEM) to sign"),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Validate, hash, sign and upload a bundle (with a progress bar).

    A manifest without ``sha256`` gets the model file's written into it (shown); with --key a
    wrong one is corrected before signing. The bundle is checked as the edge will load it
    (the input plan and output map built from the ONNX graph; refused with the edge's reason).
    Without --key the bundle must already carry a signature.json (``model push`` then only
    validates and uploads it). The cloud accepts it only if the key is registered there.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from edgecloud.cloud.registry.archive import pack_folder
    from edgecloud.cloud.registry.validate import check_bundle
    from edgecloud.core.errors import EdgecloudError
    from edgecloud.core.signing import fill_sha256, load_private_key, sign_bundle

    token = resolve_token(token, "operate")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
    ) as progress:
        step = progress.add_task("validate", total=4)
        try:
            written = fill_sha256(folder)
            if written is not None:
                progress.console.print(f"wrote sha256 {written} into {folder}/manifest.yaml")
            check_bundle(folder, None)
            progress.update(step, advance=1, description="sha256 + sign")
            if key is not None:
                sig = sign_bundle(folder, load_private_key(key.expanduser()), fix_sha256=True)
                progress.console.print(f"signed by {sig.key_id}, file sha256 {sig.file_sha256}")
            checked = check_bundle(folder, None)
            if checked.file_sha256 is not None:
                progress.console.print(f"file sha256 {checked.file_sha256}")
            progress.update(step, advance=1, description="pack")
            body = pack_folder(folder)
        except EdgecloudError as exc:
            fail(f"bundle {folder} refused: {exc}")
        progress.update(step, advance=1, description="upload")
        upload = progress.add_task("upload", total=len(body))

        def chunks() -> Any:
            for i in range(0, len(body), 64 * 1024):
                progress.update(upload, advance=min(64 * 1024, len(body) - i))
                yield body[i : i + 64 * 1024]

        import httpx

        boundary = "edgecloud-bundle-boundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="bundle"; '
            f'filename="{folder.name}.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def stream() -> Any:
            yield head
            yield from chunks()
            yield tail

        try:
            res = httpx.post(
                api_url.rstrip("/") + "/api/v1/models",
                content=stream(),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(len(head) + len(body) + len(tail)),
                },
                timeout=300.0,
            )
        except httpx.HTTPError as exc:
            fail(f"cannot reach the cloud API at {api_url}: {exc}")
        progress.update(step, advance=1, description="done")
    if res.status_code >= 300:
        try:
            err = res.json()
            fail(f"upload refused ({res.status_code}) {err.get('error')}: {err.get('detail')}")
        except ValueError:
            fail(f"upload refused ({res.status_code}): {res.text[:500]}")
    out = res.json()
    verb = "registered" if res.status_code == 201 else "already registered (same content)"
    typer.echo(f"{out['name']}:{out['version']} {verb}; artifact sha256 {out['artifact_sha256']}")


@app.command("ls")
def ls(
    name: Annotated[str | None, typer.Argument(help="only this model")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List registered models and versions."""
    token = resolve_token(token, "read")
    rows = api_call("GET", api_url, token, "/api/v1/models", params={"name": name} if name else {})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "version", "runtime", "key", "size", "artifact sha256", "uploaded")
    for m in rows:
        table.add_row(
            m["name"], m["version"] + (" (deprecated)" if m.get("deprecated_at") else ""),
            m["runtime"], m["key_id"], f"{m['artifact_size']:,}",
            m["artifact_sha256"][:16], m["created_at"][:19],
        )  # fmt: skip
    Console().print(table)


@app.command("trust")
def trust(
    public_key: Annotated[str, typer.Argument(help="operator public key: .pub path or base64")],
    name: Annotated[str, typer.Option(help="a label for the key")] = "",
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Register an operator public key in the cloud (admin token): bundles it signs are accepted."""
    text = (
        Path(public_key).expanduser().read_text().strip()
        if Path(public_key).expanduser().is_file()
        else public_key
    )
    token = resolve_token(token, "admin")
    out = api_call(
        "POST", api_url, token, "/api/v1/operator-keys", json={"public_key": text, "name": name}
    )
    typer.echo(f"trusted {out['key_id']}")


def _name_version(ref: str) -> tuple[str, str]:
    name, sep, version = ref.partition(":")
    if not sep or not name or not version:
        fail(f"{ref!r} is not NAME:VERSION")
    return name, version


@app.command("deprecate")
def deprecate(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    reason: Annotated[str | None, typer.Option(help="why (kept in the audit)")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Deprecate a version: no new rollout may pick it; nodes running it keep it."""
    name, version = _name_version(ref)
    token = resolve_token(token, "operate")
    out = api_call(
        "POST", api_url, token, f"/api/v1/models/{name}/{version}/deprecate",
        json={"reason": reason},
    )  # fmt: skip
    typer.echo(f"{name}:{version} deprecated by {out['deprecated_by']} at {out['deprecated_at']}")


@app.command("rm")
def rm(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    reason: Annotated[str | None, typer.Option(help="why (kept in the audit)")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Delete a version and its artifact (refused while a node or a rollout uses it)."""
    name, version = _name_version(ref)
    token = resolve_token(token, "operate")
    params = {"reason": reason} if reason else {}
    api_call("DELETE", api_url, token, f"/api/v1/models/{name}/{version}", params=params)
    typer.echo(f"{name}:{version} deleted")


@app.command("audit")
def audit(
    name: Annotated[str | None, typer.Argument(help="only this model")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Who deprecated or deleted which version, newest first."""
    token = resolve_token(token, "read")
    rows = api_call(
        "GET", api_url, token, "/api/v1/models/audit", params={"name": name} if name else {}
    )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("at", "action", "model", "version", "by", "reason")
    for r in rows:
        table.add_row(
            r["at"][:19], r["action"], r["name"], r["version"], r["actor"], r["reason"] or ""
        )
    Console().print(table)
