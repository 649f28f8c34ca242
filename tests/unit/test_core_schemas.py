"""schemas/*.json must equal what the code exports (run the export to refresh them)."""

from __future__ import annotations

import json
from pathlib import Path

from edgecloud.core.schemas import SCHEMA_FILES, export, render, stale

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_committed_schemas_are_not_stale() -> None:
    assert stale(SCHEMAS) == [], (
        "schemas/ is stale: run .venv/bin/python -c "
        "'from pathlib import Path; from edgecloud.core.schemas import export; "
        'export(Path("schemas"))\''
    )


def test_stale_detects_a_change_and_a_missing_file(tmp_path: Path) -> None:
    export(tmp_path)
    assert stale(tmp_path) == []
    (tmp_path / "event.v1.json").write_text("{}\n")
    (tmp_path / "reading.v1.json").unlink()
    assert sorted(stale(tmp_path)) == sorted(SCHEMA_FILES)


def test_exported_schemas_describe_the_contract() -> None:
    event = json.loads(render("event"))
    reading = json.loads(render("reading"))
    assert event["title"] == "edgecloud.event/v1"
    assert set(event["discriminator"]["mapping"]) == {"reading", "heartbeat", "model_status"}
    assert set(reading["required"]) == {"device_id", "seq", "ts", "values"}
    assert reading["properties"]["device_id"]["pattern"] == "^[A-Za-z0-9._-]{1,64}$"
