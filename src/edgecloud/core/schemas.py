"""Export the contract's JSON Schemas (``schemas/*.json``); a test fails when they are stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgecloud.core.events import EVENT_ADAPTER
from edgecloud.core.readings import Reading
from edgecloud.core.tensors import TENSOR_DTYPES

TENSOR_SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "array",
        "items": {"type": "array"},
        "description": "a tensor: nested arrays of numbers (rank >= 2, rectangular)",
    },
    {
        "type": "object",
        "description": "a tensor in binary form: raw little-endian bytes, base64",
        "properties": {
            "dtype": {"enum": list(TENSOR_DTYPES)},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            "b64": {"type": "string", "contentEncoding": "base64"},
        },
        "required": ["dtype", "shape", "b64"],
        "additionalProperties": False,
    },
]
SCHEMA_FILES = {"event.v1.json": "event", "reading.v1.json": "reading"}


def render(kind: str) -> str:
    schema: dict[str, Any]
    if kind == "event":
        schema = EVENT_ADAPTER.json_schema(by_alias=True)
        schema["$id"] = "https://edgecloud.dev/schemas/event.v1.json"
        schema["title"] = "edgecloud.event/v1"
    else:
        schema = Reading.model_json_schema()
        schema["$id"] = "https://edgecloud.dev/schemas/reading.v1.json"
        schema["title"] = "edgecloud device reading v1"
        schema["properties"]["ts"] = {
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number", "minimum": 0}],
            "title": "Ts",
            "description": "RFC 3339 string or epoch seconds",
        }
        for value in schema["properties"]["values"]["patternProperties"].values():
            value["anyOf"].extend(TENSOR_SCHEMAS)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, kind in SCHEMA_FILES.items():
        path = directory / filename
        path.write_text(render(kind))
        written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Names of schema files that differ from what the code would export."""
    return [
        name
        for name, kind in SCHEMA_FILES.items()
        if not (directory / name).exists() or (directory / name).read_text() != render(kind)
    ]
