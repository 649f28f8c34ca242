"""atheris target: the reading parser (``core.readings``), fast path against the reference.

Any input either parses to equal readings on both paths or is refused with the same reason
(``InvalidReading``); anything else (another exception, a disagreement) is a crash.
Run by ``tests/fuzz/test_fuzz.py``; by hand: ``python fuzz_readings.py -max_total_time=60 DIR``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from edgecloud.core.errors import InvalidReading
    from edgecloud.core.jsonkeys import duplicate_key
    from edgecloud.core.readings import (
        REASONS,
        check_ts_window,
        parse_reading,
        parse_reading_reference,
    )

TOPICS = ("devices/press-07/telemetry", None, "devices/other/telemetry", "bad/topic")


def _outcome(fn: object, topic: str | None, payload: bytes) -> object:
    try:
        r = fn(topic, payload, 4096)  # type: ignore[operator]
    except InvalidReading as exc:
        assert exc.reason in REASONS, exc.reason
        return ("invalid", exc.reason)
    check_ts_window(r, r.ts.timestamp(), 1.0, 1.0)  # its own ts is inside any window
    return ("ok", r.device_id, r.seq, r.ts, sorted(r.values.items(), key=str))


def test_one_input(data: bytes) -> None:
    topic = TOPICS[data[0] % len(TOPICS)] if data else None
    payload = data[1:]
    fast = _outcome(parse_reading, topic, payload)
    ref = _outcome(parse_reading_reference, topic, payload)
    assert repr(fast) == repr(ref), (fast, ref)  # repr: nan-safe, type-exact
    if fast[0] == "ok":
        assert duplicate_key(payload) is None, payload  # a repeated key is never accepted


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
