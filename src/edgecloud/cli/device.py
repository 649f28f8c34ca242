"""``edgecloud device``: the device registry (issue 16): add (one, or ``--from FILE.csv``),
ls, revoke. Talks to the cloud API with an ``operate`` token, like ``edgecloud rollout``.

A password device's password is printed once (``add``) or written once to a 0600 CSV
(``add --from``); a certificate device (``--cert``) gets a key pair and a certificate signed
by the fleet CA (``edgecloud ca init``) written to ``--out``, or, with ``--csr FILE``, only a
certificate for its own key. The CA never leaves the operator's machine: the cloud gets only
the certificate.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecloud.cli._common import AsJson, fail
from edgecloud.cli.ca import DEFAULT_CA_DIR, CaDir, ca_dir
from edgecloud.cli.client import DEFAULT_API_URL, ApiUrl, Token, api_call, resolve_token
from edgecloud.core.errors import EdgecloudError, ValidationFailed

app = typer.Typer(
    help="Device identities: credentials, certificates, revocation.", no_args_is_help=True
)
REGISTRY = "/api/v1/devices/registry"
CHUNK = 500


def parse_labels(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.replace(";", ",").split(","))):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValidationFailed("bad_labels", f"label {part!r} is not key=value")
            out[key.strip()] = value.strip()
    return out


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows ``device_id,node_id[,labels]`` (labels ``k=v;k=v``); a header line is optional.
    Every row is checked before anything is sent: one bad row and nothing is written."""
    from edgecloud.cloud.devices.service import check_id

    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValidationFailed("bad_csv", f"{path}: {exc}") from exc
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, row in enumerate(rows, 1):
        if not row or (n == 1 and row[0].strip().lower() == "device_id"):
            continue
        if len(row) not in (2, 3):
            raise ValidationFailed("bad_csv", f"{path}:{n}: want device_id,node_id[,labels]")
        device_id, node_id = row[0].strip(), row[1].strip()
        try:
            check_id(device_id, "device")
            check_id(node_id, "node")
            labels = parse_labels([row[2]]) if len(row) == 3 else {}
        except ValidationFailed as exc:
            raise ValidationFailed("bad_csv", f"{path}:{n}: {exc.detail}") from exc
        if device_id in seen:
            raise ValidationFailed("bad_csv", f"{path}:{n}: {device_id!r} appears twice")
        seen.add(device_id)
        out.append({"device_id": device_id, "node_id": node_id, "labels": labels})
    if not out:
        raise ValidationFailed("bad_csv", f"{path}: no devices")
    return out


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _cert_for(device_id: str, csr: Path | None, ca_folder: Path, out: Path) -> dict[str, str]:
    from edgecloud.core import pki

    ca = pki.load_ca(ca_folder)
    issued = pki.sign_csr(ca, device_id, csr.read_bytes()) if csr else pki.issue(ca, device_id)
    out.mkdir(parents=True, exist_ok=True)
    files = {"cert": str(out / f"{device_id}.pem"), "ca": str(out / "ca.pem")}
    (out / f"{device_id}.pem").write_text(issued.cert_pem)
    (out / "ca.pem").write_bytes(ca.pem)
    if issued.key_pem is not None:
        _write_private(out / f"{device_id}.key", issued.key_pem)
        files["key"] = str(out / f"{device_id}.key")
    return {"cert_pem": issued.cert_pem, **files}


@app.command("add")
def add(
    device_id: Annotated[str | None, typer.Argument(help="the device id (MQTT client id)")] = None,
    node: Annotated[
        str | None, typer.Option("--node", help="the node whose broker admits it")
    ] = None,
    label: Annotated[list[str] | None, typer.Option("--labels", "--label", help="k=v,k=v")] = None,
    cert: Annotated[
        bool, typer.Option("--cert", help="a certificate instead of a password")
    ] = False,
    csr: Annotated[Path | None, typer.Option(help="sign this CSR (PEM; CN = device id)")] = None,
    from_csv: Annotated[
        Path | None, typer.Option("--from", help="CSV: device_id,node_id[,labels]")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="where credentials go (folder or CSV)")] = None,
    ca_dir_opt: CaDir = DEFAULT_CA_DIR,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Register a device (or a CSV of them); its credentials are shown once."""
    try:
        if from_csv is not None:
            if device_id or cert or csr:
                fail("--from takes no device id, --cert or --csr (certificate devices: one by one)")
            _bulk(
                read_csv(from_csv),
                out or from_csv.with_suffix(".credentials.csv"),
                api_url,
                resolve_token(token, "operate"),
            )
            return
        if not device_id or not node:
            fail("give a device id and --node (or --from FILE.csv)")
        body: dict[str, Any] = {
            "device_id": device_id,
            "node_id": node,
            "labels": parse_labels(label or []),
        }
        from edgecloud.cloud.devices.service import check_id

        check_id(device_id, "device")
        files: dict[str, str] = {}
        if cert or csr:
            files = _cert_for(device_id, csr, ca_dir(ca_dir_opt), out or Path("."))
            body["cert_pem"] = files.pop("cert_pem")
    except (EdgecloudError, OSError) as exc:
        fail(str(exc))
    res = api_call(
        "POST", api_url, resolve_token(token, "operate"), REGISTRY, json={"devices": [body]}
    )
    item = res["items"][0]
    if as_json:
        typer.echo(json.dumps({**item, "files": files}, indent=2))
    elif item["password"]:
        typer.echo(
            f"device {device_id} added to node {node}; MQTT username {device_id}, "
            "client id the same; the password (shown once):",
            err=True,
        )
        typer.echo(item["password"])
    else:
        typer.echo(
            f"device {device_id} added to node {node} with certificate "
            f"{item['cert_sha256'][:16]}...",
            err=True,
        )
        for kind, path in files.items():
            typer.echo(f"{kind}: {path}")


def _bulk(rows: list[dict[str, Any]], out: Path, api_url: str, token: str) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    added: list[dict[str, Any]] = []
    try:
        with Progress(TextColumn("adding devices"), BarColumn(), MofNCompleteColumn()) as bar:
            task = bar.add_task("add", total=len(rows))
            for i in range(0, len(rows), CHUNK):
                res = api_call(
                    "POST",
                    api_url,
                    token,
                    REGISTRY,
                    json={"devices": rows[i : i + CHUNK]},
                    timeout=120.0,
                )
                added.extend(res["items"])
                bar.advance(task, len(res["items"]))
    finally:
        if added:
            lines = ["device_id,node_id,password"]
            lines += [f"{d['device_id']},{d['node_id']},{d['password'] or ''}" for d in added]
            _write_private(out, "\n".join(lines) + "\n")
            typer.echo(f"{len(added)} of {len(rows)} devices added; passwords in {out}", err=True)
    typer.echo(str(out))


@app.command("ls")
def ls(
    node: Annotated[str | None, typer.Option("--node", help="only this node's devices")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List registered devices (revoked ones too, marked)."""
    token = resolve_token(token, "operate")
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 5000, **({"node_id": node} if node else {})}
        if cursor:
            params["cursor"] = cursor
        page = api_call("GET", api_url, token, REGISTRY, params=params)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("device", "node", "auth", "labels", "created", "revoked")
    for d in items:
        labels = ",".join(f"{k}={v}" for k, v in d["labels"].items())
        table.add_row(
            d["device_id"],
            d["node_id"],
            d["auth"],
            labels,
            d["created_at"][:19],
            (d["revoked_at"] or "")[:19],
        )
    Console().print(table)


@app.command("revoke")
def revoke(
    device_id: Annotated[str, typer.Argument(help="the device id")],
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Revoke a device: its node's broker disconnects and refuses it within seconds."""
    out = api_call("DELETE", api_url, resolve_token(token, "operate"), f"{REGISTRY}/{device_id}")
    typer.echo(
        f"device {device_id} revoked at {out['revoked_at']} by {out['revoked_by']}", err=True
    )
