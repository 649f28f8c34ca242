"""Deprecating and deleting a registered model version through the real API on Postgres: the
rollout refusal, the in-use refusal, the artifact removed, the audit of who did it, and the
``edgecloud model`` commands against a live API."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from live_api import live_api
from registry_api import running_api
from sqlmodel import Session

from edgecloud.bench.rollout_models import linear_bundle
from edgecloud.cloud.db import Node, make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.core.archive import pack_folder


def _add_node(url: str, node_id: str) -> None:
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s:
        s.add(Node(node_id=node_id, labels={"site": "a"}, last_heartbeat=datetime.now(UTC)))
        s.commit()
    engine.dispose()


def test_deprecate_delete_and_audit(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_node(pg_url, "n1")
    with running_api(pg_url, tmp_path / "store", monkeypatch) as api:
        c = api.client
        for v in ("1.0.0", "1.1.0"):
            assert api.push(linear_bundle(tmp_path / v, v, api.key))[0] == 201
        base = "/api/v1/models/press-linear"
        # read scope may not retire a version
        assert c.post(f"{base}/1.0.0/deprecate", headers=api.h("read")).status_code == 403
        assert c.delete(f"{base}/1.0.0", headers=api.h("read")).status_code == 403
        assert c.post(f"{base}/9.9.9/deprecate", headers=api.h()).status_code == 404

        res = c.post(f"{base}/1.0.0/deprecate", json={"reason": "CVE-1"}, headers=api.h())
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["deprecated_by"] == "operate" and body["deprecation_reason"] == "CVE-1"
        again = c.post(f"{base}/1.0.0/deprecate", json={"reason": "other"}, headers=api.h())
        assert again.json()["deprecated_at"] == body["deprecated_at"]  # idempotent
        listed = {m["version"]: m for m in c.get("/api/v1/models", headers=api.h("read")).json()}
        assert listed["1.0.0"]["deprecated_at"] and listed["1.1.0"]["deprecated_at"] is None

        start = {"model": "press-linear:1.0.0", "selector": {"site": "a"}, "waves": [100]}
        refused = c.post("/api/v1/rollouts", json=start, headers=api.h())
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "deprecated" and "CVE-1" in refused.json()["detail"]
        # still downloadable by nodes that run it
        assert c.get(f"{base}/1.0.0/artifact", headers=api.h("read")).status_code == 200

        # 1.1.0 rolled out to n1: in use, not deleted
        ro = c.post("/api/v1/rollouts", json={**start, "model": "press-linear:1.1.0"},
                    headers=api.h())  # fmt: skip
        assert ro.status_code == 201, ro.text
        in_use = c.delete(f"{base}/1.1.0", headers=api.h())
        assert in_use.status_code == 409 and in_use.json()["error"] == "in_use"
        assert "node:n1" in in_use.json()["detail"]

        sha = listed["1.0.0"]["artifact_sha256"]
        artifact = api.store / sha[:2] / sha
        assert artifact.is_file()
        gone = c.delete(f"{base}/1.0.0", params={"reason": "superseded"}, headers=api.h())
        assert gone.status_code == 204, gone.text
        assert not artifact.exists()
        assert c.get(f"{base}/1.0.0", headers=api.h("read")).status_code == 404
        assert c.delete(f"{base}/1.0.0", headers=api.h()).status_code == 404

        audit = c.get("/api/v1/models/audit", headers=api.h("read")).json()
        assert [(a["action"], a["version"], a["actor"], a["reason"]) for a in audit] == [
            ("delete", "1.0.0", "operate", "superseded"),
            ("deprecate", "1.0.0", "operate", "CVE-1"),
        ]
        assert all(a["token_id"] and a["artifact_sha256"] == sha for a in audit)


def test_model_cli_deprecate_rm_audit(pg_url: str, tmp_path: Path) -> None:
    with live_api(pg_url, tmp_path) as api:
        folder = linear_bundle(tmp_path / "b", "2.0.0", api.key)
        assert api.upload(pack_folder(folder)).status_code == 201

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-c", "from edgecloud.cli import main; main()", "model", *args,
                 "--api-url", api.base, "--token", api.tokens["operate"]],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip

        done = cli("deprecate", "press-linear:2.0.0", "--reason", "drift")
        assert done.returncode == 0, done.stderr
        assert "press-linear:2.0.0 deprecated by operate" in done.stdout
        bad = cli("deprecate", "press-linear")
        assert bad.returncode != 0 and "NAME:VERSION" in bad.stderr + bad.stdout
        done = cli("rm", "press-linear:2.0.0", "--reason", "gone")
        assert done.returncode == 0, done.stderr
        missing = cli("rm", "press-linear:2.0.0")
        assert missing.returncode != 0 and "404" in missing.stderr + missing.stdout
        audit = cli("audit", "press-linear", "--json")
        assert audit.returncode == 0, audit.stderr
        assert '"action": "delete"' in audit.stdout and '"reason": "drift"' in audit.stdout
