"""``edgecloud model``: sign and upload bundles, list registered models, trust operator keys,
deprecate or delete a version (audited: ``model audit``).

Talks to the cloud API through ``cli/client.py`` (``--api-url``, ``--token``: an ``operate``
token; the dev stack's by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecloud.cli._common import AsJson, fail, table_or_json
from edgecloud.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
    ApiRefused,
    ApiUnreachable,
    ApiUrl,
    Token,
    api_call,
    resolve_token,
)

ModelName = Annotated[str | None, typer.Argument(help="only this model")]
app = typer.Typer(
    help="Model registry: sign and upload bundles, list models.", no_args_is_help=True
)


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

    from edgecloud.cloud.registry.validate import check_bundle
    from edgecloud.core.archive import pack_folder
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
        try:
            with ApiClient(api_url, token) as client:
                res = client.upload(
                    "/api/v1/models", "bundle", f"{folder.name}.tar.gz", body, "application/gzip",
                    on_chunk=lambda n: progress.update(upload, advance=n),
                )  # fmt: skip
        except ApiUnreachable as exc:
            fail(str(exc))
        progress.update(step, advance=1, description="done")
    if res.status_code >= 300:
        refused = ApiRefused.of(res)
        fail(f"upload refused ({refused.status}) {refused.what}")
    out = res.json()
    verb = "registered" if res.status_code == 201 else "already registered (same content)"
    typer.echo(f"{out['name']}:{out['version']} {verb}; artifact sha256 {out['artifact_sha256']}")


@app.command("ls")
def ls(
    name: ModelName = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List registered models and versions."""
    token = resolve_token(token, "read")
    rows = api_call("GET", api_url, token, "/api/v1/models", params={"name": name} if name else {})
    table_or_json(rows, as_json, [
        ("model", lambda m: m["name"]),
        ("version", lambda m: m["version"] + (" (deprecated)" if m.get("deprecated_at") else "")),
        ("runtime", lambda m: m["runtime"]), ("key", lambda m: m["key_id"]),
        ("size", lambda m: f"{m['artifact_size']:,}"),
        ("artifact sha256", lambda m: m["artifact_sha256"][:16]),
        ("uploaded", lambda m: m["created_at"][:19]),
    ])  # fmt: skip


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
    name: ModelName = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Who deprecated or deleted which version, newest first."""
    token = resolve_token(token, "read")
    rows = api_call(
        "GET", api_url, token, "/api/v1/models/audit", params={"name": name} if name else {}
    )
    table_or_json(rows, as_json, [
        ("at", lambda r: r["at"][:19]), ("action", lambda r: r["action"]),
        ("model", lambda r: r["name"]), ("version", lambda r: r["version"]),
        ("by", lambda r: r["actor"]), ("reason", lambda r: r["reason"] or ""),
    ])  # fmt: skip
