"""``cli/client.py`` against a live API on Postgres: ``model push`` uploads through httpx's
multipart (the registry parses it; the progress callback saw every byte), the table-or-JSON
listing, cursor pages (``fleet ls``), and the CLI's errors for a refused token and an unreachable
API."""

from __future__ import annotations

import json
from pathlib import Path

from live_api import live_api
from typer.testing import CliRunner

from edgecloud.bench.rollout_models import linear_bundle
from edgecloud.cli import app
from edgecloud.cli.client import ApiClient, ApiRefused, ApiUnreachable
from edgecloud.core.archive import pack_folder
from edgecloud.dev.process import free_port

runner = CliRunner()


def test_push_ls_and_errors_through_the_one_client(pg_url: str, tmp_path: Path) -> None:
    with live_api(pg_url, tmp_path) as api:
        folder = linear_bundle(tmp_path / "b", "3.1.0", api.key)
        common = ["--api-url", api.base, "--token", api.tokens["operate"]]
        pushed = runner.invoke(app, ["model", "push", str(folder), *common])
        assert pushed.exit_code == 0, pushed.output
        assert "press-linear:3.1.0 registered; artifact sha256" in pushed.output
        again = runner.invoke(app, ["model", "push", str(folder), *common])
        assert again.exit_code == 0 and "already registered (same content)" in again.output

        listed = runner.invoke(app, ["model", "ls", "press-linear", "--json", *common])
        assert listed.exit_code == 0, listed.output
        rows = json.loads(listed.stdout)
        assert [(r["name"], r["version"]) for r in rows] == [("press-linear", "3.1.0")]
        table = runner.invoke(app, ["model", "ls", *common], env={"COLUMNS": "200"})
        assert table.exit_code == 0, table.output
        assert all(cell in table.output for cell in ("press-linear", "3.1.0", "10,240"))

        seen: list[int] = []
        body = pack_folder(folder)
        with ApiClient(api.base, api.tokens["operate"]) as client:
            res = client.upload(
                "/api/v1/models", "bundle", "b.tar.gz", body, "application/gzip", seen.append
            )
            assert res.status_code < 300 and res.status_code != 201, res.text  # known content
            assert res.json()["version"] == "3.1.0"
            assert sum(seen) == len(body)
            assert list(client.pages("/api/v1/nodes")) == []  # no heartbeat yet: one empty page
            try:
                client.call("GET", "/api/v1/models/press-linear/9.9.9")
            except ApiRefused as exc:
                assert exc.status == 404 and exc.error
            else:
                raise AssertionError("a missing version must be refused")

        fleet = runner.invoke(app, ["fleet", "ls", "--json", *common])
        assert fleet.exit_code == 0 and json.loads(fleet.stdout) == [], fleet.output
        bad = runner.invoke(app, ["model", "ls", "--api-url", api.base, "--token", "nope"])
        assert bad.exit_code == 1 and "cloud API answered 401" in bad.output

    port = free_port()
    gone = runner.invoke(app, ["model", "ls", "--api-url", f"http://127.0.0.1:{port}",
                               "--token", "t"])  # fmt: skip
    assert gone.exit_code == 1 and "cannot reach the cloud API" in gone.output
    with ApiClient(f"http://127.0.0.1:{port}", "t", timeout=5.0) as client:
        try:
            client.call("GET", "/api/v1/models")
        except ApiUnreachable:
            pass
        else:
            raise AssertionError("an unreachable API must raise ApiUnreachable")
