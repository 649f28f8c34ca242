"""Duplicate keys in untrusted JSON: refused, never "the last one wins".

Python's ``json``, orjson and pydantic all keep the last of two equal keys, so
``{"device_id": "a", "device_id": "b"}`` would be read as device ``b`` by one parser and could be
read as ``a`` by another. Fast paths parse with orjson and then compare quote counts
(``maybe_duplicates``; an array of numbers costs one C ``sum``, not a walk):
every key and every string of the parsed value came from one pair of ``"`` in the text, so the
text holds exactly ``quotes(parsed)`` quote characters unless a key was repeated (the repeat's
pair is not in the parsed value) or a string holds an escaped ``\\"``. Only then (rare) is the
text parsed again, exactly, by ``duplicate_key``.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key[:64]!r} in a JSON object")
        self.key = key


def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json``: a dict, or ``DuplicateKeyError``."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return d


def quotes(value: Any) -> int:
    """The ``"`` characters the shortest JSON text of ``value`` holds (strings unescaped)."""
    t = type(value)
    if t is str:
        return 2
    if t is dict:
        return 2 * len(value) + sum(quotes(v) for v in value.values() if type(v) in _NESTED)
    if t is list:
        try:
            sum(value)  # numbers only, summed in C: no quote inside (the common array)
            return 0
        except (TypeError, OverflowError):  # a string, object, list or null among them
            return sum(quotes(v) for v in value if type(v) in _NESTED)
    return 0


_NESTED = frozenset((str, dict, list))
_STRICT = json.JSONDecoder(object_pairs_hook=refuse_duplicates)


def maybe_duplicates(text: bytes, parsed: Any) -> bool:
    """False when ``text`` (which parsed as ``parsed``) surely has no repeated key."""
    return text.count(b'"') != quotes(parsed)


def duplicate_key(text: bytes | str) -> str | None:
    """The first repeated key of any object in the JSON ``text``, or None (also when ``text``
    is not JSON: the caller's own parser says why)."""
    try:
        _STRICT.decode(text.decode("utf-8") if isinstance(text, bytes) else text)
    except DuplicateKeyError as exc:
        return exc.key
    except (ValueError, RecursionError):
        return None
    return None
