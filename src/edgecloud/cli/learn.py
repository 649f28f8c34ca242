"""``edgecloud label EVENT_ID VERDICT`` and ``edgecloud model retrain NAME --since ...``: the
learning loop from the command line (docs/learning.md). Both talk to the cloud API with an
``operate`` token, as ``edgecloud model`` does."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer

from edgecloud.cli._common import fail
from edgecloud.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
    ApiUnreachable,
    ApiUrl,
    Token,
    api_call,
    resolve_token,
)
from edgecloud.cli.rollout import _selector

VERDICTS = ("true_positive", "false_positive", "missed")
TRAINERS = ("mahalanobis", "mahalanobis-ewma", "temporal")


def label(
    event_id: Annotated[str, typer.Argument(help="the reading's event id (GET /api/v1/anomalies)")],
    verdict: Annotated[str, typer.Argument(help="true_positive | false_positive | missed")],
    note: Annotated[str | None, typer.Option(help="free text kept with the label")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Label one reading as the operator (a training label of the learning loop)."""
    if verdict not in VERDICTS:
        fail(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    try:
        uuid.UUID(event_id)
    except ValueError:
        fail(f"{event_id!r} is not an event id (a UUID)")
    body: dict[str, Any] = {"verdict": verdict, "note": note}
    out = api_call(
        "POST", api_url, resolve_token(token, "operate"),
        f"/api/v1/anomalies/{event_id}/feedback", json=body,
    )  # fmt: skip
    kind = "anomalous" if out["anomalous"] else "normal"
    typer.echo(f"labelled {out['device_id']} seq {out['seq']}: {verdict} ({kind}, operator)")


def _row(role: str, entry: dict[str, Any]) -> list[str]:
    m = entry["metrics"]
    stuck = (m.get("by_fault_kind") or {}).get("stuck", {}).get("recall")
    return [
        role, str(entry["version"]), str(m["precision"]), str(m["recall"]), str(m["f1"]),
        str(m["auc"]), str(m["fp_per_device_hour"]), "-" if stuck is None else str(stuck),
    ]  # fmt: skip


def retrain(
    name: Annotated[str, typer.Argument(help="registered model name, e.g. sensor-anomaly")],
    since: Annotated[str, typer.Option(help="window start: RFC 3339, epoch s or relative -1h")],
    until: Annotated[str | None, typer.Option(help="window end (default: now)")] = None,
    trainer: Annotated[
        str | None,
        typer.Option(
            help="mahalanobis | mahalanobis-ewma | temporal (default: the active version's)"
        ),
    ] = None,
    ground_truth: Annotated[
        bool, typer.Option(help="train on the simulator's ground truth too (off by default)")
    ] = False,
    evaluate_with_ground_truth: Annotated[
        bool, typer.Option(help="score the held-out window on the simulator's ground truth")
    ] = False,
    holdout: Annotated[float, typer.Option(help="held-out share of the window, by time")] = 0.3,
    rollout: Annotated[
        bool, typer.Option(help="start a staged shadow rollout of an accepted candidate")
    ] = False,
    waves: Annotated[str, typer.Option(help="rollout waves (with --rollout)")] = "50,100",
    selector: Annotated[
        list[str] | None, typer.Option("--selector", "-l", help="node labels k=v (--rollout)")
    ] = None,
    gate: Annotated[
        list[str] | None,
        typer.Option(help="--rollout gate name=value, e.g. max_score_drift=0.3 (repeatable)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the outcome as JSON")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Retrain NAME in the cloud on the readings and labels of a window, evaluate the candidate
    against the active version on the held-out end of it, and register it when it is better
    by the cloud's retrain_min_gain (signed there with the retrain key); --rollout then starts a
    staged rollout with shadow gates. A refused candidate exits 3 with the figures."""
    from rich.console import Console
    from rich.table import Table

    if trainer is not None and trainer not in TRAINERS:
        fail(f"trainer must be one of {', '.join(TRAINERS)}")
    try:  # checked before anything is written
        wave_list = [int(w) for w in waves.split(",")]
        gates = {k: float(v) for k, _, v in (g.partition("=") for g in gate or [])}
    except ValueError:
        fail("waves are integers (50,100) and gates name=number")
    sel = _selector(selector or [])
    tok = resolve_token(token, "operate")
    body = {
        "since": since, "until": until, "trainer": trainer, "ground_truth": ground_truth,
        "evaluate_with_ground_truth": evaluate_with_ground_truth, "holdout": holdout,
    }  # fmt: skip
    console = Console(stderr=as_json)
    with console.status(f"retraining {name} in the cloud (read window, train, sign, evaluate)"):
        try:
            with ApiClient(api_url, tok, timeout=900.0) as client:
                res = client.request("POST", f"/api/v1/models/{name}/retrain", json=body)
        except ApiUnreachable as exc:
            fail(str(exc))
    try:
        out = res.json()
    except ValueError:
        fail(f"cloud API answered {res.status_code}: {res.text[:500]}")
    if res.status_code not in (201, 409) or "report" not in out:
        fail(f"retrain refused ({res.status_code}) {out.get('error')}: {out.get('detail')}")
    if rollout and out["accepted"]:
        ro = {"model": f"{name}:{out['version']}", "selector": sel, "waves": wave_list,
              "gates": gates}  # fmt: skip
        out["rollout"] = api_call("POST", api_url, tok, "/api/v1/rollouts", json=ro)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
    else:
        for step in out.get("steps", []):
            console.print(f"  {step}")
        r = out["report"]
        cols = ("", "version", "precision", "recall", "F1", "AUC", "FP/device-h", "stuck recall")
        table = Table(*cols, title=f"held-out window from {r['held_out_from']}")
        table.add_row(*_row("active", r["active"]))
        table.add_row(*_row("candidate", r["candidate"]))
        console.print(table)
        verdict = "accepted and registered" if out["accepted"] else "REFUSED, nothing registered"
        console.print(
            f"{name}:{out['version']} {verdict} ({r['metric']} gain {r['gain']:+.4f}, "
            f"needed {r['min_gain']}); evaluation {out['evaluation_id']}"
        )
        if "rollout" in out:
            console.print(f"rollout {out['rollout']['id']} started (waves {waves}, shadow)")
    if not out["accepted"]:
        raise typer.Exit(code=3)
