"""COPY text escaping (adapters/postgres.py): the str and bytes forms agree, and only the four
bytes COPY treats specially are touched."""

from __future__ import annotations

import pytest

from edgecloud.adapters.postgres import copy_bytes, copy_field, needs_escape


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ('{"a":1}', '{"a":1}'),
        ("a\\b", "a\\\\b"),
        ("tab\there", "tab\\there"),
        ("line\nbreak\r", "line\\nbreak\\r"),
        ("\\n literal", "\\\\n literal"),
        ("ÄÖ \x00 \u2028", "ÄÖ \x00 \u2028"),
    ],
)
def test_copy_field_and_copy_bytes_agree(text: str, escaped: str) -> None:
    assert copy_field(text) == escaped
    assert copy_bytes(text.encode()) == escaped.encode()
    assert needs_escape(text.encode()) == (escaped != text)
